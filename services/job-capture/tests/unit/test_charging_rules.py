"""The point of charging, as job-capture's pure rules: a job released to the printer is
charged unless Platen knows the printer received none of it."""

from __future__ import annotations

import typing

import pytest

from platen.events.jobs import JobState
from platen.job_capture.domain import (
    FINAL,
    PRINTABLE,
    WAITING,
    after_outcome,
    can_move,
    cancelled_in_cups,
)

STATES = sorted(typing.get_args(JobState))
# Where a job ends up, and whether the ledger posts its hold there.
CHARGED = {"printed", "unconfirmed"}
NOT_CHARGED = {"denied", "failed", "cancelled"}


def test_every_state_is_either_charged_open_or_uncharged():
    assert CHARGED | NOT_CHARGED | WAITING | {"released"} == set(STATES)
    assert NOT_CHARGED | {"printed"} == FINAL
    assert {"released", "unconfirmed"} == PRINTABLE


@pytest.mark.parametrize(
    ("state", "printed", "target"),
    [
        ("released", True, "printed"),
        ("released", False, "failed"),
        # After the release timeout the job was charged as unconfirmed: a late "printed"
        # closes it (the ledger charges nothing more), a late "failed" changes nothing.
        ("unconfirmed", True, "printed"),
        ("unconfirmed", False, None),
        # Reports about jobs that never reached the printer, or were closed: ignored.
        ("captured", True, None),
        ("priced", True, None),
        ("cancelled", True, None),
        ("failed", True, None),
        ("denied", True, None),
        ("printed", True, None),
        ("printed", False, None),
    ],
)
def test_what_an_outcome_does(state, printed, target):
    assert after_outcome(state, printed) == target
    if target is not None:
        assert can_move(state, target)


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("printed", [True, False])
def test_no_outcome_ever_makes_a_charged_job_free(state, printed):
    target = after_outcome(state, printed)
    if state in CHARGED:
        assert target is None or target in CHARGED


@pytest.mark.parametrize(
    ("state", "started", "cancels"),
    [
        ("captured", False, True),  # still being analysed or priced
        ("priced", False, True),  # waiting for the user or the ledger
        ("released", False, True),  # released, but the printer's backend never started
        ("released", True, False),  # the printer is being sent it: charged when reported
        ("unconfirmed", False, False),  # charged already
        ("printed", False, False),
        ("failed", False, False),
        ("cancelled", False, False),
        ("denied", False, False),
    ],
)
def test_a_cancel_in_cups_is_free_only_while_the_printer_has_none_of_the_job(
    state, started, cancels
):
    assert cancelled_in_cups(state, printing_started=started) is cancels


def test_only_the_cups_backend_may_cancel_a_released_job():
    # A cancel event (from the ledger, or anyone on the bus) finds the job at the printer.
    assert not can_move("released", "cancelled")
    assert cancelled_in_cups("released", printing_started=False)


def test_only_a_released_job_can_become_unconfirmed():
    assert [s for s in STATES if can_move(s, "unconfirmed")] == ["released"]
    assert [t for t in STATES if can_move("unconfirmed", t)] == ["printed"]
