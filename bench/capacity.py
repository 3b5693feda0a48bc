"""What the capacity benches (held_jobs.py, desktops.py) share: percentiles, and a process
tree's memory and CPU time read from /proc."""

from __future__ import annotations

import math
import os
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank percentile `q` (0 to 100) of `values`: a value that occurred, so
    p99 of 200 samples is the second slowest, not an interpolation."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def spread(ms: list[float]) -> str:
    return (
        f"p50 {percentile(ms, 50):.1f} ms, p99 {percentile(ms, 99):.1f} ms, "
        f"max {max(ms):.1f} ms ({len(ms)} samples)"
    )


def status_kib(status: str, field: str) -> int:
    """A `/proc/PID/status` field in KiB (`VmRSS`, `RssAnon`, ...)."""
    for line in status.splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise KeyError(field)


def stat_fields(stat: str) -> tuple[int, float]:
    """(parent pid, CPU seconds used: user + system) from a `/proc/PID/stat` line. The
    command name (second field) may hold spaces and parentheses: fields are counted from
    the last ')'."""
    rest = stat[stat.rindex(")") + 2 :].split()
    # rest[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
    return int(rest[1]), (int(rest[11]) + int(rest[12])) / CLOCK_TICKS


def tree(pid: int) -> list[int]:
    """`pid` and every process below it (analysis workers, Ghostscript, ...)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid, _ = stat_fields((entry / "stat").read_text())
            except (OSError, ValueError):
                continue  # gone meanwhile
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(children.get(p, []))
    return found


def rss_mib(pids: list[int]) -> float:
    total = 0
    for p in pids:
        try:
            total += status_kib(Path(f"/proc/{p}/status").read_text(), "VmRSS")
        except (OSError, KeyError):
            continue  # a zombie has no VmRSS
    return total / 1024


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for p in pids:
        try:
            total += stat_fields(Path(f"/proc/{p}/stat").read_text())[1]
        except OSError:
            continue
    return total


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])
