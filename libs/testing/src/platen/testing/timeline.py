"""Where a parallel run's time went: each worker's busy time and the tests that ended last.

`make test` runs on several workers, and its wall time is set by the worker that finishes
last. pytest's `--durations` says which tests are long, not whether they ran beside the
rest or as a tail on their own. This plugin, in the controlling process, collects every
report's start and stop (workers send them) and prints, after the run:

- per worker: the tests it ran, the seconds it spent in tests, and when it finished;
- the tests that were still running in the last tenth of the run, with their start and
  end, which is the tail a shorter `make test` has to move or shorten.

It reads only what pytest reports; it changes no test and no order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

# How much of the run's end counts as its tail.
TAIL_FRACTION = 0.1
TAIL_LINES = 12


@dataclass
class _Span:
    worker: str
    start: float
    stop: float


@dataclass
class Timeline:
    spans: dict[str, _Span] = field(default_factory=dict)

    def add(self, nodeid: str, worker: str, start: float, stop: float) -> None:
        span = self.spans.get(nodeid)
        if span is None:
            self.spans[nodeid] = _Span(worker, start, stop)
        else:
            span.start = min(span.start, start)
            span.stop = max(span.stop, stop)

    def lines(self) -> list[str]:
        if not self.spans:
            return []
        begin = min(s.start for s in self.spans.values())
        end = max(s.stop for s in self.spans.values())
        total = end - begin
        out = [f"tests from the first start to the last stop: {total:.0f} s"]
        workers: dict[str, list[_Span]] = {}
        for span in self.spans.values():
            workers.setdefault(span.worker, []).append(span)
        for worker in sorted(workers):
            spans = workers[worker]
            busy = sum(s.stop - s.start for s in spans)
            last = max(s.stop for s in spans) - begin
            out.append(
                f"  {worker}: {len(spans)} tests, {busy:.0f} s in tests, done at {last:.0f} s"
            )
        tail_from = end - total * TAIL_FRACTION
        tail = sorted(
            ((nodeid, s) for nodeid, s in self.spans.items() if s.stop >= tail_from),
            key=lambda pair: pair[1].start,
        )
        out.append(
            f"still running in the last {TAIL_FRACTION:.0%} (from {tail_from - begin:.0f} s):"
        )
        for nodeid, span in tail[:TAIL_LINES]:
            start, stop = span.start - begin, span.stop - begin
            out.append(f"  {span.worker} {start:6.0f} s → {stop:6.0f} s  {nodeid}")
        if len(tail) > TAIL_LINES:
            out.append(f"  ... and {len(tail) - TAIL_LINES} more")
        return out


_TIMELINE = pytest.StashKey[Timeline]()


# pytest_runtest_logreport is given no config: keep the one this plugin was configured with.
_CONFIG: list[pytest.Config] = []


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_TIMELINE] = Timeline()
    _CONFIG[:] = [config]


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if not _CONFIG or not (report.start and report.stop):
        return
    node = getattr(report, "node", None)  # set by xdist on a report a worker sent
    worker = getattr(getattr(node, "gateway", None), "id", None) or "main"
    _CONFIG[0].stash[_TIMELINE].add(report.nodeid, worker, report.start, report.stop)


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    if hasattr(config, "workerinput"):
        return  # a worker: the controller prints the whole run's timeline
    lines = config.stash[_TIMELINE].lines()
    if not lines:
        return
    terminalreporter.section("where the time went")
    for line in lines:
        terminalreporter.write_line(line)
