"""Where a run's set-up time goes: the wall seconds spent in each fixture, by name.

A whole-system test pays for the servers, the system and the print server before its
body runs, and for stopping them after. `--durations` shows a test's set-up as one figure;
this plugin splits it by fixture, so a run says how many systems, cupsd's and brokers it
started and what they cost (docs/development.md, "Test time, measured").

A fixture's set-up time here is its own: the set-up of the fixtures it asks for is
counted under their names, not again under its own, so the figures add up to the time
spent setting up. Its teardown is timed from its first finalizer to the last. Only wall
time: the processes a fixture starts (services, servers) are not the test process's
children in a way their CPU could be read per fixture.

Each worker sends its tally to the controller, which prints the fixtures that cost the
most after the run ("where the set-up time went").
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

# How many fixtures the summary names, the costliest first.
SUMMARY_LINES = 15
_WORKER_KEY = "platen-fixture-time"


@dataclass
class FixtureTally:
    """Set-ups, their seconds and the teardowns' seconds, per fixture name (and scope)."""

    setups: dict[str, int] = field(default_factory=dict)
    setup_s: dict[str, float] = field(default_factory=dict)
    teardown_s: dict[str, float] = field(default_factory=dict)

    def add_setup(self, name: str, seconds: float) -> None:
        self.setups[name] = self.setups.get(name, 0) + 1
        self.setup_s[name] = self.setup_s.get(name, 0.0) + seconds

    def add_teardown(self, name: str, seconds: float) -> None:
        self.teardown_s[name] = self.teardown_s.get(name, 0.0) + seconds

    def merge(self, data: dict) -> None:
        """Add a tally sent as `as_data()` (a worker's)."""
        for name, count in data["setups"].items():
            self.setups[name] = self.setups.get(name, 0) + count
        for name, s in data["setup_s"].items():
            self.setup_s[name] = self.setup_s.get(name, 0.0) + s
        for name, s in data["teardown_s"].items():
            self.teardown_s[name] = self.teardown_s.get(name, 0.0) + s

    def as_data(self) -> dict:
        # Plain dicts: what xdist can carry from a worker.
        return {
            "setups": dict(self.setups),
            "setup_s": dict(self.setup_s),
            "teardown_s": dict(self.teardown_s),
        }

    def lines(self, limit: int = SUMMARY_LINES) -> list[str]:
        names = set(self.setups) | set(self.teardown_s)
        if not names:
            return []

        def total(name: str) -> float:
            return self.setup_s.get(name, 0.0) + self.teardown_s.get(name, 0.0)

        ranked = sorted(names, key=lambda n: (-total(n), n))
        setup_all = sum(self.setup_s.values())
        teardown_all = sum(self.teardown_s.values())
        out = [
            f"in fixtures, all workers: {setup_all:.0f} s setting up, "
            f"{teardown_all:.0f} s tearing down",
            f"  {'fixture':<34} {'set-ups':>7} {'set-up s':>9} {'teardown s':>10} {'each s':>7}",
        ]
        for name in ranked[:limit]:
            count = self.setups.get(name, 0)
            each = total(name) / count if count else 0.0
            out.append(
                f"  {name:<34} {count:>7} {self.setup_s.get(name, 0.0):>9.1f} "
                f"{self.teardown_s.get(name, 0.0):>10.1f} {each:>7.2f}"
            )
        if len(ranked) > limit:
            rest = sum(total(n) for n in ranked[limit:])
            out.append(f"  ... {len(ranked) - limit} more fixtures, {rest:.1f} s in all")
        return out


class SetupClock:
    """Own time of nested set-ups: a fixture's set-up runs the set-ups of the fixtures it
    asks for inside it, and their time is taken out of its own."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self._stack: list[list[float]] = []  # [start, seconds spent in nested set-ups]

    def enter(self) -> None:
        self._stack.append([self._clock(), 0.0])

    def leave(self) -> float:
        """The seconds of the innermost set-up, less those of the set-ups inside it."""
        start, nested = self._stack.pop()
        elapsed = self._clock() - start
        if self._stack:
            self._stack[-1][1] += elapsed
        return elapsed - nested


def _name(fixturedef) -> str:
    scope = fixturedef.scope
    return fixturedef.argname if scope == "function" else f"{fixturedef.argname} ({scope})"


_TALLY = pytest.StashKey[FixtureTally]()
_CLOCK = pytest.StashKey[SetupClock]()
_TEARDOWN_STARTED = pytest.StashKey[dict]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_TALLY] = FixtureTally()
    config.stash[_CLOCK] = SetupClock()
    config.stash[_TEARDOWN_STARTED] = {}


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef, request):
    config = request.config
    clock = config.stash[_CLOCK]
    name = _name(fixturedef)
    clock.enter()
    try:
        return (yield)
    finally:
        config.stash[_TALLY].add_setup(name, clock.leave())
        # Finalizers run last-added first: this one starts the teardown's clock, and
        # pytest_fixture_post_finalizer (added before the set-up) stops it. Those of the
        # fixtures that depend on this one are added later and run before it.
        started = config.stash[_TEARDOWN_STARTED]
        fixturedef.addfinalizer(lambda: started.__setitem__(fixturedef, time.perf_counter()))


def pytest_fixture_post_finalizer(fixturedef, request) -> None:
    start = request.config.stash[_TEARDOWN_STARTED].pop(fixturedef, None)
    if start is None:
        return  # its set-up never ran (or failed before this plugin saw it)
    seconds = time.perf_counter() - start
    request.config.stash[_TALLY].add_teardown(_name(fixturedef), seconds)


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    if hasattr(config, "workeroutput"):
        config.workeroutput[_WORKER_KEY] = config.stash[_TALLY].as_data()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    """xdist: a worker has finished; add its tally to the controller's."""
    data = getattr(node, "workeroutput", {}).get(_WORKER_KEY)
    if data is not None:
        node.config.stash[_TALLY].merge(data)


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    if hasattr(config, "workeroutput"):
        return  # a worker: the controller prints the whole run's figures
    lines = config.stash[_TALLY].lines()
    if not lines:
        return
    terminalreporter.section("where the set-up time went")
    for line in lines:
        terminalreporter.write_line(line)
