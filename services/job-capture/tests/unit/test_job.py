"""The Job aggregate: every transition, the moves it refuses, what each move publishes,
and the one cancel path with its three callers. No database, no broker."""

from __future__ import annotations

import base64
import hashlib
import typing
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from platen.events.jobs import (
    JobCancelled,
    JobCaptured,
    JobDenied,
    JobFailed,
    JobPrinted,
    JobState,
    JobUnconfirmed,
    SubmitJob,
)
from platen.job_capture.analysis import Analysis
from platen.job_capture.domain import (
    EXPIRED,
    INTERRUPTED,
    NOT_ANALYSED,
    NOT_PRINTED,
    UNREPORTED,
    IllegalTransition,
    Job,
    can_move,
    identity_mode,
    too_large,
)

STATES = sorted(typing.get_args(JobState))
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def job(state: str = "captured", **fields) -> Job:
    fields = {"source": "cups", "pages": 2, "copies": 1, **fields}
    return Job(
        job_id=uuid.uuid4(),
        user="alice",
        printer="lab",
        document_name="a.pdf",
        state=state,
        **fields,
    )


# Each transition of the machine, as the method that makes it.
TRANSITIONS: dict[str, Callable[[Job], None]] = {
    "priced": lambda j: j.price(Decimal("0.40")),
    "released": lambda j: j.release(NOW),
    "denied": lambda j: j.deny("over the page limit"),
    "cancelled": lambda j: j.cancel("the user said no", by="event"),
    "printed": lambda j: j.mark_printed(NOW),
    "failed": lambda j: j.fail("status 1"),
    "unconfirmed": lambda j: j.mark_unconfirmed(),
}


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("target", sorted(TRANSITIONS))
def test_a_job_moves_only_where_the_machine_allows_and_is_unchanged_otherwise(state, target):
    # A job already priced: a price that comes after the ledger's decision is recorded
    # without a move (see the test below), so the refusal is tested on a priced job.
    j = job(state, reason="before", **({"cost": Decimal("0.10")} if target == "priced" else {}))
    if can_move(state, target):
        TRANSITIONS[target](j)
        assert j.state == target
    else:
        with pytest.raises(IllegalTransition) as refused:
            TRANSITIONS[target](j)
        assert (refused.value.state, refused.value.target) == (state, target)
        assert (j.state, j.reason, j.events) == (state, "before", [])
        assert j.cost == (Decimal("0.10") if target == "priced" else None)


@pytest.mark.parametrize("state", sorted(set(STATES) - {"captured", "priced"}))
def test_a_price_that_comes_after_the_ledgers_decision_is_kept_without_a_move(state):
    # The ledger's `job.authorized` or `job.denied` may be handled before the `job.priced`
    # it followed (one queue's deliveries run concurrently): the job keeps its state and
    # its log still shows what it cost; a second price changes nothing.
    j = job(state, reason="before")
    j.price(Decimal("0.30"))
    assert (j.state, j.reason, j.cost, j.events) == (state, "before", Decimal("0.30"), [])
    with pytest.raises(IllegalTransition):
        j.price(Decimal("9"))
    assert j.cost == Decimal("0.30")


def test_what_each_move_publishes():
    priced = job("captured")
    priced.price(Decimal("1.20"))
    assert (priced.cost, priced.events) == (Decimal("1.20"), [])
    released = job("priced")
    released.release(NOW)
    assert (released.state, released.events) == ("released", [])  # its backend prints it
    denied = job("priced")
    denied.deny("no credit")
    assert (denied.reason, denied.events) == ("no credit", [])  # the denier published it
    printed = job("released")
    printed.mark_printed(NOW)
    [event] = printed.events
    assert isinstance(event, JobPrinted)
    assert (event.job_id, event.pages, event.copies, event.printed_at) == (
        printed.job_id,
        2,
        1,
        NOW,
    )
    failed = job("released")
    failed.fail(None)
    [event] = failed.events
    assert isinstance(event, JobFailed) and event.reason == failed.reason == NOT_PRINTED
    unconfirmed = job("released")
    unconfirmed.mark_unconfirmed()
    [event] = unconfirmed.events
    assert isinstance(event, JobUnconfirmed)
    assert event.reason == unconfirmed.reason == UNREPORTED


def test_releasing_a_programs_job_prints_it():
    j = job("priced", source="api")
    j.release(NOW)
    assert j.state == "printed"
    assert [type(e) for e in j.events] == [JobPrinted]


def test_only_a_cups_job_can_be_charged_as_unconfirmed():
    with pytest.raises(IllegalTransition):
        job("released", source="api").mark_unconfirmed()


# ------------------------------------------------------------------ cancelling


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("started", [False, True])
def test_one_cancel_three_callers(state, started):
    """Anyone may cancel a waiting job; only its CUPS backend a released one, and only
    before printing started; an event's cancel is not published again."""
    allowed = {
        "event": state in {"captured", "priced"},
        "deadline": state in {"captured", "priced"},
        "cups": state in {"captured", "priced"} or (state == "released" and not started),
    }
    for by, may in allowed.items():
        j = job(state, printing_started=started)
        if not may:
            with pytest.raises(IllegalTransition):
                j.cancel("why", by=by)
            assert (j.state, j.events) == (state, [])
            continue
        j.cancel("why", by=by)
        assert (j.state, j.reason) == ("cancelled", "why")
        if by == "event":
            assert j.events == []
        else:
            [event] = j.events
            assert isinstance(event, JobCancelled)
            assert (event.job_id, event.reason) == (j.job_id, "why")


def test_a_job_past_its_deadline_is_cancelled_with_the_reason_the_user_sees():
    j = job("priced")
    j.expire()
    assert (j.state, j.reason) == ("cancelled", EXPIRED)
    assert [e.reason for e in j.events] == [EXPIRED]
    with pytest.raises(IllegalTransition):
        job("released").expire()  # at the printer: its fate is the print server's to say


# --------------------------------------------------------------------- outcomes


def test_outcomes():
    printed = job("released")
    assert printed.report_outcome(True, now=NOW) == "printed"
    assert printed.state == "printed" and printed.reason is None
    interrupted = job("released")
    assert interrupted.report_outcome(True, now=NOW, interrupted=True) == "printed"
    assert interrupted.reason == INTERRUPTED
    failed = job("released")
    assert failed.report_outcome(False, now=NOW, reason="status 1") == "failed"
    assert (failed.state, failed.reason) == ("failed", "status 1")
    late = job("unconfirmed", reason=UNREPORTED)
    assert late.report_outcome(False, now=NOW, reason="status 1") == "late failure"
    assert late.state == "unconfirmed" and late.events == []
    assert "after the release timeout" in late.reason and "status 1" in late.reason
    late_printed = job("unconfirmed")
    assert late_printed.report_outcome(True, now=NOW) == "printed"
    assert [type(e) for e in late_printed.events] == [JobPrinted]
    for state in ("captured", "priced", "printed", "failed", "cancelled", "denied"):
        j = job(state)
        assert j.report_outcome(False, now=NOW) == "ignored"
        assert (j.state, j.events) == (state, [])


def test_only_a_released_job_is_kept_alive():
    for state in STATES:
        j = job(state)
        assert j.keep_alive() is (state == "released")
        assert j.printing_started is (state == "released")


# ---------------------------------------------------------------------- capture


def submission(**fields) -> SubmitJob:
    return SubmitJob(
        job_id=uuid.uuid4(),
        user="alice",
        printer="lab",
        document_name="a.pdf",
        document=base64.b64encode(b"%PDF-1.7 ..."),
        **fields,
    )


ANALYSIS = Analysis(format="pdf", pages=3, color_pages=(2,), page_sizes=("A4",) * 3)


def capture(cmd: SubmitJob, **given) -> Job:
    """`Job.capture` at NOW with a one-minute deadline."""
    given = {"identity": "api", "print_server": None, "analysis": ANALYSIS, **given}
    return Job.capture(cmd, now=NOW, deadline_seconds=60, **given)


def test_a_captured_job_carries_its_analysis_and_says_so():
    cmd = submission(source="cups", duplex=True, copies=2, origin_host="10.0.0.7")
    j = capture(cmd, identity="unverified", print_server="lab")
    assert (j.state, j.reason, j.pages, j.size_bytes) == ("captured", None, 3, len(cmd.document))
    assert j.deadline_at == NOW + timedelta(seconds=60)
    assert j.document_sha256 == hashlib.sha256(cmd.document).hexdigest()
    assert (j.document.sides, j.document.sheets) == (3, 2)  # duplex
    assert not j.spooled  # a CUPS job's document stays with the CUPS backend
    [event] = j.events
    assert isinstance(event, JobCaptured)
    assert (event.pages, event.copies, event.color_pages, event.sides) == (3, 2, [2], 3)
    assert (event.identity, event.origin_host, event.captured_at) == (
        "unverified",
        "10.0.0.7",
        NOW,
    )


def test_a_programs_job_waits_for_release_with_its_document():
    j = capture(submission())
    assert j.spooled
    j.price(Decimal("1"))
    assert j.spooled
    j.release(NOW)
    assert not j.spooled


def test_a_refused_or_unanalysed_document_makes_a_denied_job():
    refused = "unsupported document format"
    for analysis, why, expected in (
        (None, refused, refused),
        (ANALYSIS, refused, refused),
        (None, None, NOT_ANALYSED),
    ):
        j = capture(submission(), analysis=analysis, refused=why)
        assert (j.state, j.reason, j.document, j.spooled) == ("denied", expected, None, False)
        [event] = j.events
        assert isinstance(event, JobDenied)
        assert (event.reason, event.denied_by) == (expected, "job-capture")


def test_rules_of_capture():
    assert too_large(10, 10) is None
    assert too_large(11, 10) == "the document is too large (11 bytes; the limit is 10)"
    assert identity_mode(None) == ("desktop", False)  # never trusted unless set
    assert identity_mode("trusted") == ("trusted", True)
