"""Where a run's CPU goes, test by test: `PLATEN_CPU_BY_TEST=1 make test` (off otherwise).

A whole run is held by the processors (the timeline's "busy" line: 96 to 97 % on six
workers), so a shorter `make test` needs less CPU, and the question is which tests spend
it. The machine's figure cannot say, and pytest's durations are wall time, of tests that
mostly wait. This plugin measures, around each test's whole protocol (its set-ups, its
body, its teardowns), the CPU time of the worker's process tree: the worker itself and
every live process below it, each with what its own ended children left in its count
(Linux's `cutime`/`cstime`, which a parent collects when it waits for a child). The
servers a test starts, the services, `platenctl` and Ghostscript are in that tree; a
worker's broker and database too, so a test is charged the work it makes them do.

A process whose parent ends first would leave the tree (and take its CPU with it), so a
measuring worker is made a child subreaper: such orphans become its children. It never
waits for them, so they stay as zombies, still counted, until the worker ends. That is
why this is opt-in, for a measuring run, and not in every run.

Not counted: what runs outside the worker's tree (podman's containers under `conmon`,
another session's processes). Each worker's first test includes its broker's and its
database's start; a module's shared set-up is charged to the test that first asks for it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

ENABLE = "PLATEN_CPU_BY_TEST"
PR_SET_CHILD_SUBREAPER = 36
TOP_FILES = 15
TOP_TESTS = 10
_WORKER_KEY = "platen_cpu_by_test"


def tree_ticks(processes: Mapping[int, tuple[int, int]], root: int) -> int:
    """The clock ticks of `root` and every process below it, given each process's
    (parent, ticks) with its waited-for children's ticks included."""
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in processes.items():
        children.setdefault(parent, []).append(pid)
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += processes.get(pid, (0, 0))[1]
        todo.extend(children.get(pid, ()))
    return total


def read_processes(proc: Path = Path("/proc")) -> dict[int, tuple[int, int]]:
    """Every process's (parent, user + system ticks of it and its waited-for children)."""
    found = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # ended meanwhile
        # The command name, in parentheses, may hold spaces and parentheses itself.
        fields = stat.rsplit(")", 1)[1].split()
        parent = int(fields[1])
        utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
        found[int(entry.name)] = (parent, utime + stime + cutime + cstime)
    return found


def summary(rows: Iterable[tuple[str, float, float]]) -> list[str]:
    """The lines printed after the run, from (test id, CPU seconds, wall seconds) rows:
    the total, the costliest files, then the costliest tests."""
    rows = list(rows)
    if not rows:
        return []
    files: dict[str, list[float]] = {}
    for nodeid, cpu, wall in rows:
        tally = files.setdefault(nodeid.split("::", 1)[0], [0, 0.0, 0.0])
        tally[0] += 1
        tally[1] += cpu
        tally[2] += wall
    total = sum(cpu for _, cpu, _ in rows)
    out = [f"{len(rows)} tests, {total:.0f} CPU-s in the workers' process trees"]
    out.append(f"  {'CPU-s':>7} {'wall s':>7} {'tests':>5}  file")
    by_cpu = sorted(files.items(), key=lambda item: -item[1][1])
    for name, (count, cpu, wall) in by_cpu[:TOP_FILES]:
        out.append(f"  {cpu:7.1f} {wall:7.1f} {count:5d}  {name}")
    out.append(f"  {'CPU-s':>7} {'wall s':>7}  test")
    for nodeid, cpu, wall in sorted(rows, key=lambda row: -row[1])[:TOP_TESTS]:
        out.append(f"  {cpu:7.1f} {wall:7.1f}  {nodeid}")
    return out


_ROWS = pytest.StashKey[list]()


def _enabled() -> bool:
    return os.environ.get(ENABLE, "") not in ("", "0")


def pytest_configure(config: pytest.Config) -> None:
    if not _enabled():
        return
    config.stash[_ROWS] = []
    if hasattr(config, "workeroutput") or not getattr(config.option, "numprocesses", None):
        # The process that runs the tests (a worker, or a run without workers). (ctypes
        # imported here: the plugin is loaded by every run, and used by few.)
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    if not _enabled():
        return (yield)
    ticks = os.sysconf("SC_CLK_TCK")
    me = os.getpid()
    before, started = tree_ticks(read_processes(), me), time.monotonic()
    try:
        return (yield)
    finally:
        spent = tree_ticks(read_processes(), me) - before
        item.config.stash[_ROWS].append((item.nodeid, spent / ticks, time.monotonic() - started))


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    if _enabled() and hasattr(config, "workeroutput"):
        config.workeroutput[_WORKER_KEY] = config.stash[_ROWS]


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    """xdist: a worker has finished; add its rows to the controller's."""
    rows = getattr(node, "workeroutput", {}).get(_WORKER_KEY)
    if rows is not None and _enabled():
        node.config.stash[_ROWS].extend(tuple(row) for row in rows)


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    if not _enabled() or hasattr(config, "workeroutput"):
        return
    lines = summary(config.stash[_ROWS])
    if not lines:
        return
    terminalreporter.section("where the CPU went, by test")
    for line in lines:
        terminalreporter.write_line(line)
