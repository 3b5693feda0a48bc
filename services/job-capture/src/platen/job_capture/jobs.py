"""The job state machine: which state may follow which. Pure logic.

captured -> priced -> released -> printed | failed
   any waiting state -> denied | cancelled (a policy, the ledger, the user, the deadline)
"""

from __future__ import annotations

FINAL = frozenset({"printed", "denied", "failed", "cancelled"})
WAITING = frozenset({"captured", "priced"})

ALLOWED = {
    "captured": {"priced", "released", "denied", "cancelled"},
    "priced": {"released", "denied", "cancelled"},
    "released": {"printed", "failed"},
}


def can_move(current: str, target: str) -> bool:
    return target in ALLOWED.get(current, set())
