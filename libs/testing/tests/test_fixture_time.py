"""The run's set-up summary: each fixture's own set-up and teardown time, from every worker."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

from platen.testing.fixture_time import FixtureTally, SetupClock


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_set_up_is_charged_its_own_time_not_that_of_the_fixtures_it_asks_for() -> None:
    clock = FakeClock()
    setups = SetupClock(clock)
    setups.enter()  # `system`: 1 s of its own before it asks for `vhost`
    clock.now += 1.0
    setups.enter()  # `vhost`: 2 s, 0.5 of them in `infra`
    clock.now += 1.5
    setups.enter()  # `infra`
    clock.now += 0.5
    assert setups.leave() == 0.5
    assert setups.leave() == 1.5
    clock.now += 3.0  # `system` again: the services start
    assert setups.leave() == 4.0


def test_workers_tallies_add_up_and_the_costliest_fixture_comes_first() -> None:
    gw0, gw1 = FixtureTally(), FixtureTally()
    gw0.add_setup("system", 4.0)
    gw0.add_teardown("system", 1.0)
    gw0.add_setup("infra (session)", 20.0)
    gw1.add_setup("system", 6.0)
    gw1.add_teardown("system", 3.0)
    gw1.add_setup("tmp_path", 0.01)
    controller = FixtureTally()
    for worker in (gw0, gw1):
        controller.merge(worker.as_data())

    lines = controller.lines()

    assert lines[0] == "in fixtures, all workers: 30 s setting up, 4 s tearing down"
    rows = [line.split() for line in lines[2:]]
    assert rows[0] == ["infra", "(session)", "1", "20.0", "0.0", "20.00"]
    assert rows[1] == ["system", "2", "10.0", "4.0", "7.00"]
    assert rows[2][0] == "tmp_path"


def test_a_run_on_two_workers_reports_every_set_up_and_the_teardowns_time(tmp_path) -> None:
    (tmp_path / "conftest.py").write_text(
        textwrap.dedent(
            """
            import time
            import pytest
            pytest_plugins = ["platen.testing.fixture_time"]

            @pytest.fixture(scope="module")
            def server():
                yield
                time.sleep(0.3)

            @pytest.fixture
            def system(server):
                yield
                time.sleep(0.2)
            """
        )
    )
    tests = "".join(f"def test_{n}(system):\n    pass\n" for n in range(6))
    (tmp_path / "test_a.py").write_text(tests)
    (tmp_path / "test_b.py").write_text(tests)
    args = [sys.executable, "-m", "pytest", "-q", "-n", "2", "-p", "no:randomly"]
    args += ["-p", "no:cacheprovider", "-o", "addopts=", str(tmp_path)]
    ended = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert ended.returncode == 0, ended.stdout + ended.stderr

    summary = ended.stdout.split("where the set-up time went")[1]
    rows = {
        m[0]: m[1:]
        for m in re.findall(r"^  (\w+(?: \(\w+\))?) +(\d+) +(\S+) +(\S+)", summary, re.M)
    }
    # Twelve tests, each its own `system`; one `server` per module on whichever worker ran
    # it (a module's tests may be split over both workers).
    assert rows["system"][0] == "12"
    assert int(rows["server (module)"][0]) in range(2, 5)
    # Teardowns are timed from their first finalizer to the last: at least the sleeps
    # (less the summary's rounding to a tenth).
    assert float(rows["system"][2]) >= 12 * 0.2 - 0.05
    assert float(rows["server (module)"][2]) >= 2 * 0.3 - 0.05
