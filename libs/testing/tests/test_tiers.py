"""The rule that puts each test in its tier, and the guard that keeps unit tests serverless."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from platen.testing.tiers import ServerInUnitTest, tier_of, tier_of_fixtures


class FakeItem:
    """What `tier_of` reads from a collected test."""

    def __init__(self, path: str, fixturenames=(), marks=()) -> None:
        self.path = Path(path)
        self.fixturenames = list(fixturenames)
        self._marks = [getattr(pytest.mark, name).mark for name in marks]

    def iter_markers(self):
        return iter(self._marks)


def test_fixtures_decide_the_tier_by_the_highest_server_they_reach():
    assert tier_of_fixtures(["tmp_path", "monkeypatch"]) == "unit"
    assert tier_of_fixtures(["database_url", "infra"]) == "integration"
    assert tier_of_fixtures(["system", "vhost", "infra"]) == "e2e"
    assert tier_of_fixtures(["display"]) == "e2e"


def test_an_explicit_mark_wins_then_the_folder_then_the_fixtures():
    root = "/repo/services/pricing/tests"
    marked = FakeItem(f"{root}/unit/test_x.py", ["infra"], marks=["integration"])
    assert tier_of(marked) == ("integration", "marked")
    assert tier_of(FakeItem(f"{root}/integration/test_x.py")) == ("integration", "folder")
    assert tier_of(FakeItem(f"{root}/unit/test_x.py", ["infra"])) == ("unit", "folder")
    assert tier_of(FakeItem("/repo/tests/cups/test_x.py")) == ("e2e", "folder")
    assert tier_of(FakeItem("/repo/tests/e2e/test_x.py")) == ("e2e", "folder")
    assert tier_of(FakeItem(f"{root}/test_x.py", ["database_url", "infra"])) == (
        "integration",
        "fixtures",
    )
    assert tier_of(FakeItem(f"{root}/test_x.py", ["tmp_path"])) == ("unit", "fixtures")


def test_this_unit_test_may_not_open_a_network_socket():
    with pytest.raises(ServerInUnitTest, match="unit test but opened a network socket"):
        socket.create_connection(("127.0.0.1", 9), timeout=1)
    with socket.socket() as s, pytest.raises(ServerInUnitTest):
        s.bind(("127.0.0.1", 0))


def test_a_unit_test_may_use_local_socket_pairs():
    # asyncio's event loop wakes itself through a socket pair: that is no server.
    a, b = socket.socketpair()
    with a, b:
        a.sendall(b"x")
        assert b.recv(1) == b"x"


def test_the_last_unit_test_may_end_the_sessions_server_fixtures(tmp_path):
    """Which test a worker runs last depends on the order it takes tests in; when it is a
    unit test, its teardown also ends the session's fixtures (a database an end-to-end test
    used, which talks to its server as it goes), and that is not the unit test's doing. A
    unit test's own teardown before the end is still guarded."""
    import subprocess
    import sys
    import textwrap

    (tmp_path / "conftest.py").write_text(
        textwrap.dedent(
            """
            import socket
            import pytest
            pytest_plugins = ["platen.testing.tiers"]

            @pytest.fixture(scope="session")
            def server():
                listener = socket.create_server(("127.0.0.1", 0))
                yield listener
                socket.create_connection(listener.getsockname(), timeout=5).close()
                listener.close()

            @pytest.fixture
            def talks_at_teardown(server):
                yield
                socket.create_connection(server.getsockname(), timeout=5).close()
            """
        )
    )

    def run(tests: str) -> subprocess.CompletedProcess:
        (tmp_path / "test_order.py").write_text(textwrap.dedent(tests))
        args = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly"]
        args += ["-p", "no:cacheprovider", "-o", "addopts=", str(tmp_path)]
        return subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=120)

    first = """
        import pytest

        @pytest.mark.integration
        def test_a_uses_the_server(server):
            pass
        """
    last = """
        @pytest.mark.unit
        def test_c_last():
            pass
        """
    ended = run(first + last)
    assert ended.returncode == 0, ended.stdout + ended.stderr
    own = """
        @pytest.mark.unit
        def test_b_talks_at_its_own_teardown(talks_at_teardown):
            pass
        """
    ended = run(first + own + last)
    assert ended.returncode == 1 and "ServerInUnitTest" in ended.stdout, ended.stdout
