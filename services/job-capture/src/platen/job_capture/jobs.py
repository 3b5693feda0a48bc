"""The job state machine: which state may follow which. Pure logic.

captured -> priced -> released -> printed | failed
   any waiting state -> denied | cancelled (a policy, the ledger, the user, the deadline)
   released -> cancelled      cancelled in CUPS before the printer was sent any of it
                              (only that report: see `cancelled_in_cups`)
   released -> unconfirmed    no outcome and no heartbeat by the release timeout: charged
   unconfirmed -> printed     the outcome came late: charged once, already

The point of charging: a released job is charged unless Platen knows the printer received
none of it. Only two reports say so: the printer's backend failed before the release
timeout ("failed"), or the job was cancelled before its backend started ("cancelled").
"""

from __future__ import annotations

FINAL = frozenset({"printed", "denied", "failed", "cancelled"})
WAITING = frozenset({"captured", "priced"})
# Released to the printer, not known to be printed: the CUPS backend prints these.
PRINTABLE = frozenset({"released", "unconfirmed"})

ALLOWED = {
    "captured": {"priced", "released", "denied", "cancelled"},
    "priced": {"released", "denied", "cancelled"},
    # A cancel from anyone else (the ledger, an event) finds the job at the printer.
    "released": {"printed", "failed", "unconfirmed"},
    "unconfirmed": {"printed"},
}


def can_move(current: str, target: str) -> bool:
    return target in ALLOWED.get(current, set())


def after_outcome(current: str, printed: bool) -> str | None:
    """The state the print server's report of what the printer did moves a job to; None
    when the report changes nothing.

    A late report on an unconfirmed job (already charged): "printed" closes it; "failed"
    leaves it charged and unconfirmed, because the release timeout has passed and Platen
    can no longer tell that report from one sent to avoid paying. An administrator sees
    the report in the job's reason and may refund it.
    """
    if current == "released":
        return "printed" if printed else "failed"
    if current == "unconfirmed" and printed:
        return "printed"
    return None


def cancelled_in_cups(current: str, printing_started: bool) -> bool:
    """Whether a cancel reported by the CUPS backend cancels the job, uncharged: only
    while the printer has none of it (still waiting for a decision, or released but its
    printer's backend not started: no heartbeat yet)."""
    return current in WAITING or (current == "released" and not printing_started)
