"""The known-long tests go to the fronts of the workers' first slices (platen.testing.schedule)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from platen.testing.schedule import order, slice_sizes


def test_slices_are_cut_as_worksteal_cuts_them():
    assert slice_sizes(10, 4) == [2, 2, 3, 3]
    assert slice_sizes(3, 4) == [0, 1, 1, 1]
    assert sum(slice_sizes(1752, 4)) == 1752


def _slices(ids, new, workers):
    out, start = [], 0
    for size in slice_sizes(len(ids), workers):
        out.append([ids[i] for i in new[start : start + size]])
        start += size
    return out


def test_each_long_group_leads_a_slice_the_longest_first_and_the_rest_keep_their_order():
    ids = [f"a/test_{i}.py::t" for i in range(20)] + [
        "e/long.py::one",
        "e/long.py::two",  # a module: one group, kept together and in order
        "e/longest.py::t",
        "e/mid.py::t",
        "e/short.py::t",
    ]
    long = {"e/long.py": 100, "e/longest.py": 300, "e/mid.py": 90, "e/short.py": 20}
    new = order(ids, 2, long)
    assert sorted(new) == list(range(len(ids)))  # every test, once
    first, second = _slices(ids, new, 2)
    assert first[0] == "e/longest.py::t"
    # the second slice has less long work, so it takes the next two groups and the last
    assert second[:4] == ["e/long.py::one", "e/long.py::two", "e/mid.py::t", "e/short.py::t"]
    rest = first[1:] + second[4:]
    assert rest == [f"a/test_{i}.py::t" for i in range(20)]


def test_a_test_named_on_its_own_is_its_own_group_inside_its_module():
    ids = ["m.py::a", "m.py::slow", "m.py::b", "n.py::c", "n.py::d", "n.py::e"]
    new = order(ids, 2, {"m.py::slow": 50, "m.py": 10})
    first, second = _slices(ids, new, 2)
    assert first[0] == "m.py::slow"
    assert second[:2] == ["m.py::a", "m.py::b"]


def test_one_process_or_nothing_known_keeps_the_order():
    ids = ["x.py::a", "e/long.py::t", "y.py::b"]
    assert order(ids, 1, {"e/long.py": 100}) == [0, 1, 2]
    assert order(ids, 4, {"z.py": 100}) == [0, 1, 2]


def test_a_collection_too_small_for_its_groups_keeps_the_order():
    ids = ["e/a.py::1", "e/a.py::2", "e/a.py::3", "x.py::b"]
    assert order(ids, 4, {"e/a.py": 100}) == [0, 1, 2, 3]


def test_the_workers_of_a_run_start_with_the_long_tests(tmp_path):
    """Through pytest-xdist itself: every worker collects the same new order, and each
    long test is the first its worker runs."""
    (tmp_path / "conftest.py").write_text(
        textwrap.dedent(
            """
            import platen.testing.schedule as schedule
            pytest_plugins = ["platen.testing.schedule"]
            schedule.LONG.clear()
            schedule.LONG.update({"test_x.py::test_long_a": 9, "test_x.py::test_long_b": 8})

            def pytest_runtest_setup(item):
                import os
                with open(os.environ["RUN_LOG"], "a") as log:
                    log.write(f"{os.environ['PYTEST_XDIST_WORKER']} {item.name}\\n")
            """
        )
    )
    (tmp_path / "test_x.py").write_text(
        "".join(f"def test_{i}():\n    pass\n" for i in range(8))
        + "def test_long_a():\n    pass\ndef test_long_b():\n    pass\n"
    )
    log = tmp_path / "run.log"
    # Only xdist's plugin (no autoloaded ones): a third of the time, the same scheduler.
    env = {**os.environ, "RUN_LOG": str(log), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    args = ["-p", "xdist.plugin", "-n", "2", "--dist", "worksteal", "-q", "-o", "addopts="]
    out = subprocess.run(
        [sys.executable, "-m", "pytest", *args, "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    firsts = {}
    for line in log.read_text().splitlines():
        worker, name = line.split()
        firsts.setdefault(worker, name)
    assert sorted(firsts.values()) == ["test_long_a", "test_long_b"]
