"""What the analysis tests read of a process in /proc."""

from __future__ import annotations


def state(pid: int) -> str:
    """Process `pid`'s state letter (`Z`: ended, not yet reaped), or "gone" (reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return "gone"


def children(pid: int) -> set[int]:
    """The living (not yet ended) children of process `pid`."""
    with open(f"/proc/{pid}/task/{pid}/children") as listed:
        found = {int(child) for child in listed.read().split()}
    return {child for child in found if state(child) not in ("Z", "gone")}


def address_space_limit(pid: int) -> str:
    """Process `pid`'s soft limit of address space, as /proc writes it ("unlimited" or bytes)."""
    with open(f"/proc/{pid}/limits") as limits:
        line = next(line for line in limits if line.startswith("Max address space"))
    return line.split()[3]
