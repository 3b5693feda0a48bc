"""The job state machine: which state may follow which. Pure logic."""

from __future__ import annotations

FINAL = frozenset({"printed", "denied", "failed", "cancelled"})

ALLOWED = {
    "captured": {"priced", "released", "denied", "cancelled"},
    "priced": {"released", "denied", "cancelled"},
    "released": {"printed", "failed"},
}


def can_move(current: str, target: str) -> bool:
    return target in ALLOWED.get(current, set())
