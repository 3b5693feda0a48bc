"""Every test's tier, decided by rule so that nobody has to remember to mark one.

- `unit`: no server at all (no broker, database, cupsd, X display, no network socket).
  `make test-unit` runs these, in seconds.
- `integration`: real RabbitMQ and/or PostgreSQL (through the `infra` fixture).
- `e2e`: the whole system as processes, the CUPS path, or a GUI on a display.

The rule, first match wins:
1. an explicit `@pytest.mark.unit`, `integration` or `e2e` (for a test that opens a server
   without a fixture, e.g. by running a program that connects to one);
2. the folder: `tests/e2e/` and `tests/cups/` are e2e, `.../tests/integration/` is
   integration, `.../tests/unit/` is unit;
3. the fixtures the test uses, transitively: the highest tier among SERVER_FIXTURES, else unit.

A `unit` test that needs a server fixture is an error at collection, and a `unit` test
that opens a network socket fails (the guard below): a unit test that quietly starts a
server would make `make test-unit` slow without anyone noticing.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

import pytest

TIERS = ("unit", "integration", "e2e")

# The fixtures that start or reach a server, and the tier each puts a test in. Fixtures
# that depend on these (database_url, vhost, system, cups, ...) follow through the
# closure pytest computes (`item.fixturenames`).
SERVER_FIXTURES = {
    "infra": "integration",
    "system": "e2e",
    "display": "e2e",
}

# Folders (as parts of a test's path) that decide its tier.
FOLDER_TIERS = (
    (("tests", "e2e"), "e2e"),
    (("tests", "cups"), "e2e"),
    (("tests", "integration"), "integration"),
    (("tests", "unit"), "unit"),
)


class ServerInUnitTest(RuntimeError):
    """A test of the unit tier reached for a network socket."""


def _contains(parts: tuple[str, ...], run: tuple[str, ...]) -> bool:
    return any(parts[i : i + len(run)] == run for i in range(len(parts) - len(run) + 1))


def tier_of_fixtures(fixturenames) -> str:
    found = [SERVER_FIXTURES[n] for n in fixturenames if n in SERVER_FIXTURES]
    return max(found, key=TIERS.index, default="unit")


def tier_of(item: pytest.Item) -> tuple[str, str]:
    """(tier, why) for one collected test."""
    explicit = [m.name for m in item.iter_markers() if m.name in TIERS]
    if explicit:
        return explicit[0], "marked"
    parts = item.path.parts
    for run, tier in FOLDER_TIERS:
        if _contains(parts, run):
            return tier, "folder"
    return tier_of_fixtures(getattr(item, "fixturenames", ())), "fixtures"


def pytest_configure(config: pytest.Config) -> None:
    for tier, text in (
        ("unit", "no server: no broker, database, cupsd, display or network socket"),
        ("integration", "real RabbitMQ and/or PostgreSQL"),
        ("e2e", "the whole system as processes, the CUPS path, or a GUI"),
    ):
        config.addinivalue_line("markers", f"{tier}: {text} (set by rule, platen.testing.tiers)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    wrong = []
    for item in items:
        tier, why = tier_of(item)
        if tier == "unit":
            needs = tier_of_fixtures(getattr(item, "fixturenames", ()))
            if needs != "unit":
                servers = sorted(n for n in item.fixturenames if n in SERVER_FIXTURES)
                wrong.append(f"{item.nodeid}: unit ({why}) but uses {', '.join(servers)}")
        if why != "marked":
            item.add_marker(getattr(pytest.mark, tier))
    if wrong:
        raise pytest.UsageError(
            "tests of the unit tier that need a server (move them to tests/integration/):\n"
            + "\n".join(wrong)
        )


_NETWORK = (socket.AF_INET, socket.AF_INET6)


@contextlib.contextmanager
def no_network(nodeid: str) -> Iterator[None]:
    """Refuse connect and bind on network sockets (Unix sockets and socketpairs stay)."""
    originals = {n: getattr(socket.socket, n) for n in ("connect", "connect_ex", "bind")}

    def guarded(name):
        original = originals[name]

        def method(self, *args, **kwargs):
            if self.family in _NETWORK:
                raise ServerInUnitTest(
                    f"{nodeid} is a unit test but opened a network socket ({name} "
                    f"{args[0] if args else ''}): it needs a server, so it belongs to "
                    "tests/integration/ (or mark it integration)"
                )
            return original(self, *args, **kwargs)

        return method

    for name in originals:
        setattr(socket.socket, name, guarded(name))
    try:
        yield
    finally:
        for name, original in originals.items():
            setattr(socket.socket, name, original)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item):
    return (yield from _guarded(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    return (yield from _guarded(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem):
    if nextitem is None:
        # The session's last test: its teardown also ends the session's fixtures, such as
        # the databases and brokers earlier end-to-end tests on this worker used, which
        # talk to their servers as they go. Which test comes last depends on the order
        # the workers take tests in, so that teardown is not the unit test's own.
        return (yield)
    return (yield from _guarded(item))


def _guarded(item: pytest.Item):
    if item.get_closest_marker("unit") is None:
        return (yield)
    with no_network(item.nodeid):
        return (yield)
