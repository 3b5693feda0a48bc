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
