"""Where a parallel run's time went: each worker's busy time and the tests that ended last.

`make test` runs on several workers, and its wall time is set by the worker that finishes
last. pytest's `--durations` says which tests are long, not whether they ran beside the
rest or as a tail on their own. This plugin, in the controlling process, collects every
report's start and stop (workers send them) and prints, after the run:

- per worker: the tests it ran, the seconds it spent in tests, and when it finished;
- the tests that were still running in the last tenth of the run, with their start and
  end, which is the tail a shorter `make test` has to move or shorten;
- how busy the machine's processors were over the run (Linux's /proc/stat): whether a
  shorter run needs less work done, or less waiting. It counts everything the machine ran
  (the containers podman starts and the servers the tests start included), which the
  CPU time of the run's own process tree does not.

It reads only what pytest reports; it changes no test and no order.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

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


@dataclass(frozen=True)
class CpuTimes:
    """The machine's processors' time so far, in clock ticks (the first line of
    /proc/stat): all of it, the idle part and the part idle waiting for I/O."""

    total: int
    idle: int
    iowait: int

    @classmethod
    def parse(cls, stat: str) -> CpuTimes:
        fields = stat.splitlines()[0].split()
        if fields[0] != "cpu":
            raise ValueError("not /proc/stat")
        # user nice system idle iowait irq softirq steal (guest time is in user already)
        ticks = [int(f) for f in fields[1:9]]
        return cls(total=sum(ticks), idle=ticks[3], iowait=ticks[4])

    @classmethod
    def now(cls) -> CpuTimes | None:
        try:
            return cls.parse(Path("/proc/stat").read_text())
        except (OSError, ValueError, IndexError):
            return None  # not Linux: the line is left out

    def since(self, earlier: CpuTimes, cpus: int, ticks_per_second: int) -> str:
        total = self.total - earlier.total
        if total <= 0:
            return ""
        busy = total - (self.idle - earlier.idle) - (self.iowait - earlier.iowait)
        waiting = self.iowait - earlier.iowait
        return (
            f"the machine's {cpus} processors: busy {busy / total:.0%} of the run "
            f"({busy / ticks_per_second:.0f} CPU-s), idle waiting for I/O "
            f"{waiting / total:.0%}"
        )


_TIMELINE = pytest.StashKey[Timeline]()
_CPU_AT_START = pytest.StashKey["CpuTimes | None"]()


# pytest_runtest_logreport is given no config: keep the one this plugin was configured with.
_CONFIG: list[pytest.Config] = []


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_TIMELINE] = Timeline()
    config.stash[_CPU_AT_START] = CpuTimes.now()
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
    start, end = config.stash.get(_CPU_AT_START, None), CpuTimes.now()
    if start is not None and end is not None:
        cpus = os.cpu_count() or 1
        if machine := end.since(start, cpus, os.sysconf("SC_CLK_TCK")):
            lines.insert(1, machine)
    terminalreporter.section("where the time went")
    for line in lines:
        terminalreporter.write_line(line)
