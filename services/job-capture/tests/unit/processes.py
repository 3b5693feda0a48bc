"""What the analysis tests read of a process in /proc."""

from __future__ import annotations


def state(pid: int) -> str:
    """Process `pid`'s state letter (`Z`: ended, not yet reaped), or "gone" (reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return "gone"
