"""Where a job's time goes in the backend: milliseconds from the process's start to each
step (Python started, modules imported, document prepared, connected, submitted,
decided), said once to cupsd's log as a DEBUG line, which `bench/cups_latency.py` reads.
"""

from __future__ import annotations

import os
import time

_marks: list[tuple[str, float]] = []
# Whose process start the steps count from: this process's, or, in a warm backend
# (`warm`), the start of the `shim` that cupsd started for the job.
_counted_from = "self"


def now() -> float:
    """The clock /proc counts a process's start on (seconds since boot): the same in
    every process, so the agent can mark a step for the backend."""
    return time.clock_gettime(time.CLOCK_BOOTTIME)


def counted_from(pid: int) -> None:
    """Count the job's steps from the start of process `pid` (the shim cupsd started),
    forgetting those this process marked before it had a job."""
    global _counted_from
    _counted_from = str(pid)
    _marks.clear()


def _process_start() -> float | None:
    """When the job's process started, on `now`'s clock (to 1/100 s: the kernel's
    ticks)."""
    try:
        with open(f"/proc/{_counted_from}/stat") as stat:
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
