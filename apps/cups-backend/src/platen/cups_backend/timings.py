"""Where a job's time goes in the backend: milliseconds from the process's start to each
step (Python started, modules imported, document prepared, connected, submitted,
decided), said once to cupsd's log as a DEBUG line, which `bench/cups_latency.py` reads.
"""

from __future__ import annotations

import os
import time

_marks: list[tuple[str, float]] = []


def now() -> float:
    """The clock /proc counts a process's start on (seconds since boot): the same in
    every process, so the agent can mark a step for the backend."""
    return time.clock_gettime(time.CLOCK_BOOTTIME)


def _process_start() -> float | None:
    """When this process started, on `now`'s clock (to 1/100 s: the kernel's ticks)."""
    try:
        with open("/proc/self/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22, `starttime`
    except (OSError, ValueError, IndexError):
        return None


def mark(step: str, at: float | None = None) -> None:
    """Note that `step` is done now, or `at` (`now()` in the process that did it); the
    first time only: a reconnection is not a step."""
    if all(name != step for name, _ in _marks):
        _marks.append((step, now() if at is None else at))


def summary() -> str:
    """`start=<s> step=<ms> ...`: when the process started (seconds since boot, so that
    a bench can time from `lp`), then each step's time since."""
    start = _process_start()
    if start is None or not _marks:
        return "unknown"
    steps = " ".join(f"{name}={(at - start) * 1000:.0f}" for name, at in _marks)
    return f"start={start:.2f} {steps}"
