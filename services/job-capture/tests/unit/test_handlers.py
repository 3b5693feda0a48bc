"""job-capture's handlers as the service layer: each runs as the dispatcher runs it, with a
FakeContext over the in-memory FakeStore (fakes.py), and no broker or database. What they
leave in the store and what they emit is what is asserted."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

import platen.events.jobs as ev
from platen.events.print_identity import (
    GetPrinterIdentity,
    ListPrinterIdentities,
    SetPrinterIdentity,
)
from platen.events.system import ErrorReply
from platen.job_capture import analyse_only, expiry, handlers, print_identity
from platen.job_capture.analysis import Analysis, UnreadableDocument
from platen.job_capture.backend_reports import INTERRUPTED, on_cancel, on_heartbeat
from platen.job_capture.domain import EXPIRED, UNREPORTED, Job
from platen.job_capture.main import SPEC
from platen.messaging.fakes import FakeContext

from .fakes import FakeStore

# What every event about the tests' jobs says of them.
ABOUT = {"user": "alice", "printer": "lab", "document_name": "a.pdf"}
PRINT_SERVER = "platen-print-server.test"  # print server `test`'s broker identity
ADMIN = "platen-admin"
DOCUMENT = b"%PDF-1.7 three pages"


@pytest.fixture(autouse=True)
def analyser(monkeypatch):
    """The document analysis (Ghostscript, an adapter) replaced: three A4 pages, page 2 in
    colour. `analysed` lists the documents it was given."""
    analysed: list[bytes] = []

    async def analyse(document: bytes, owner: str = "") -> Analysis:
        analysed.append(document)
        return Analysis(format="pdf", pages=3, color_pages=(2,), page_sizes=("A4",) * 3)

    monkeypatch.setattr(handlers, "analyse", analyse)
    return analysed


def context(store: FakeStore, sender: str | None = PRINT_SERVER) -> FakeContext:
    return FakeContext(store=store, user_id=sender, producer="job-capture")


def submission(job_id: uuid.UUID | None = None, *, source: str = "cups", **fields) -> ev.SubmitJob:
    document = base64.b64encode(DOCUMENT)
    job_id = job_id or uuid.uuid4()
    return ev.SubmitJob(job_id=job_id, **ABOUT, document=document, source=source, **fields)


def a_job(store: FakeStore, state: str, *, source="cups", server="test", **fields) -> Job:
    job = Job(
        uuid.uuid4(),
        "alice",
        "lab",
        "a.pdf",
        state,
        source=source,
        pages=3,
        print_server=server if source == "cups" else None,
        submitted_at=datetime.now(UTC),
        **fields,
    )
    return store.put(job)


def priced(job_id: uuid.UUID, cost: str) -> ev.JobPriced:
    return ev.JobPriced(job_id=job_id, **ABOUT, sides=3, copies=1, cost=Decimal(cost))


def authorized(job_id: uuid.UUID) -> ev.JobAuthorized:
    return ev.JobAuthorized(job_id=job_id, user="alice", account="alice", amount=Decimal("0.30"))


# --------------------------------------------------------------------- submitting


async def test_a_print_servers_job_is_captured_once_and_announced():
    store = FakeStore()
    ctx = context(store)
    cmd = submission()
    assert (await handlers.on_submit(ctx, cmd)).job_id == cmd.job_id
    saved = store.jobs[cmd.job_id]
    assert (saved.state, saved.print_server, saved.identity) == ("captured", "test", "unverified")
    assert store.spooled == {}  # the CUPS backend keeps a CUPS job's document
    [event] = ctx.messages()
    assert isinstance(event, ev.JobCaptured)
    assert (event.pages, event.color_pages, event.identity) == (3, [2], "unverified")
    assert ctx.emitted[0].correlation_id == str(cmd.job_id)
    # The same submission again (a redelivery): the same answer, nothing new.
    await handlers.on_submit(ctx, cmd)
    assert len(store.jobs) == 1 and len(ctx.emitted) == 1


async def test_a_programs_job_waits_with_its_document_until_released_and_printed():
    store = FakeStore()
    ctx = context(store, ADMIN)
    cmd = submission(source="api")
    await handlers.on_submit(ctx, cmd)
    assert store.jobs[cmd.job_id].identity == "api"
    assert store.spooled == {cmd.job_id: DOCUMENT}
    await handlers.on_priced(ctx, priced(cmd.job_id, "0.30"))
    assert store.jobs[cmd.job_id].cost == Decimal("0.30")
    await handlers.on_authorized(ctx, authorized(cmd.job_id))
    assert store.jobs[cmd.job_id].state == "printed"
    assert store.spooled == {}
    assert [type(m) for m in ctx.messages()] == [ev.JobCaptured, ev.JobPrinted]


async def test_a_trusted_queues_jobs_say_so():
    store = FakeStore()
    admin = context(store, ADMIN)
    await print_identity.on_set(admin, SetPrinterIdentity(printer="lab", mode="trusted"))
    cmd = submission()
    capture = context(store)
    await handlers.on_submit(capture, cmd)
    assert store.jobs[cmd.job_id].identity == "trusted"
    # Marked: the mark travels on job.captured to pricing, and on to every service.
    [captured] = capture.emitted
    assert captured.marks == {"identity": "trusted"}
    # A later delivery about the job marks it again from the stored job.
    later = context(store)
    await handlers.on_priced(later, priced(cmd.job_id, "0.30"))
    assert later.marks == {"identity": "trusted"}


async def test_a_desktop_queues_jobs_carry_no_mark():
    store = FakeStore()
    cmd = submission()
    ctx = context(store)
    await handlers.on_submit(ctx, cmd)
    assert store.jobs[cmd.job_id].identity != "trusted"
    assert ctx.marks == {} and all(e.marks == {} for e in ctx.emitted)


async def test_a_document_too_large_or_unreadable_is_denied_at_capture(monkeypatch, analyser):
    store = FakeStore()
    ctx = context(store)
    monkeypatch.setenv("PLATEN_MAX_DOCUMENT_BYTES", "4")
    large = submission()
    await handlers.on_submit(ctx, large)
    assert analyser == []  # never analysed
    monkeypatch.setenv("PLATEN_MAX_DOCUMENT_BYTES", "1000")

    async def unreadable(document: bytes, owner: str = "") -> Analysis:
        raise UnreadableDocument("unsupported document format")

    monkeypatch.setattr(handlers, "analyse", unreadable)
    refused = submission()
    await handlers.on_submit(ctx, refused)

    async def crash(document: bytes, owner: str = "") -> Analysis:
        raise RuntimeError("boom")

    monkeypatch.setattr(handlers, "analyse", crash)
    crashed = submission()
    await handlers.on_submit(ctx, crashed)
    reasons = {
        large.job_id: f"the document is too large ({len(DOCUMENT)} bytes; the limit is 4)",
        refused.job_id: "unsupported document format",
        crashed.job_id: "the document could not be analysed",
    }
    for job_id, reason in reasons.items():
        assert (store.jobs[job_id].state, store.jobs[job_id].reason) == ("denied", reason)
    assert {(m.job_id, m.reason, m.denied_by) for m in ctx.messages(ev.JobDenied)} == {
        (job_id, reason, "job-capture") for job_id, reason in reasons.items()
    }
    assert len(ctx.emitted) == 3


@pytest.mark.parametrize(
    ("sender", "source", "error"),
    [
        (PRINT_SERVER, "api", "a print server submits CUPS jobs only"),
        (ADMIN, "cups", "only a print server submits CUPS jobs"),
        (None, "api", "the request does not say who sends it (set the AMQP user_id property)"),
    ],
)
async def test_a_submission_from_the_wrong_sender_is_refused(sender, source, error):
    store = FakeStore()
    ctx = context(store, sender)
    reply = await handlers.on_submit(ctx, submission(source=source))
    assert isinstance(reply, ErrorReply) and reply.error == error
    assert store.jobs == {} and ctx.emitted == []


async def test_a_cancel_that_overtakes_its_submission_drops_it():
    store = FakeStore()
    ctx = context(store)
    job_id = uuid.uuid4()
    assert (await on_cancel(ctx, ev.CancelJob(job_id=job_id))).state == "unknown"
    await handlers.on_submit(ctx, submission(job_id))
    assert store.jobs == {} and ctx.emitted == []
    assert store.locked == [job_id, job_id]  # both under the job id's lock


# --------------------------------------------------------------- decisions (events)


async def test_a_released_cups_job_waits_for_its_backend():
    store = FakeStore()
    ctx = context(store)
    job = a_job(store, "priced")
    await handlers.on_authorized(ctx, authorized(job.job_id))
    assert store.jobs[job.job_id].state == "released"
    assert ctx.emitted == []


async def test_decisions_move_only_waiting_jobs_and_are_not_published_again():
    store = FakeStore()
    ctx = context(store)
    waiting = a_job(store, "captured", source="api", server=None)
    store.spooled[waiting.job_id] = DOCUMENT
    other = a_job(store, "priced")
    at_printer = a_job(store, "released")
    done = a_job(store, "printed")
    await handlers.on_denied(
        ctx,
        ev.JobDenied(job_id=waiting.job_id, **ABOUT, reason="no colour", denied_by="pricing"),
    )
    for job in (other, at_printer):
        await handlers.on_cancelled(
            ctx,
            ev.JobCancelled(job_id=job.job_id, **ABOUT, reason="the user said no"),
        )
    await handlers.on_priced(ctx, priced(done.job_id, "9"))
    await handlers.on_priced(ctx, priced(uuid.uuid4(), "9"))
    states = {j: (s.state, s.reason) for j, s in store.jobs.items()}
    assert states[waiting.job_id] == ("denied", "no colour")
    assert store.spooled == {}
    assert states[other.job_id] == ("cancelled", "the user said no")
    assert states[at_printer.job_id] == ("released", None)  # only its backend cancels it
    # Its price came after the ledger's decision: kept, with no move and nothing published.
    assert states[done.job_id] == ("printed", None)
    assert store.jobs[done.job_id].cost == Decimal("9")
    assert ctx.emitted == []


class Pushes:
    """Stands in for the dispatcher's publisher: what was published, where."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, ev.JobStatus]] = []

    async def publish(self, exchange, routing_key, message, *, mandatory=True) -> None:
        assert not mandatory  # no backend waiting: nothing to wake, no error
        status = ev.JobStatus.model_validate_json(message.body)
        self.sent.append((exchange, routing_key, status))


async def test_a_decision_is_pushed_to_the_jobs_own_print_server_once_committed():
    store = FakeStore()
    ctx = context(store)
    ctx.publisher = pushes = Pushes()
    released, denied, cancelled = (a_job(store, "priced") for _ in range(3))
    api = a_job(store, "priced", source="api", server=None)
    waiting = a_job(store, "captured")
    await handlers.on_authorized(ctx, authorized(released.job_id))
    await handlers.on_authorized(ctx, authorized(api.job_id))
    await handlers.on_denied(
        ctx, ev.JobDenied(job_id=denied.job_id, **ABOUT, reason="no", denied_by="ledger")
    )
    await handlers.on_cancelled(ctx, ev.JobCancelled(job_id=cancelled.job_id, **ABOUT, reason="x"))
    await handlers.on_priced(ctx, priced(waiting.job_id, "0.30"))  # still waiting: no push
    # The same decision delivered again (or out of order) moves nothing: no second push.
    await handlers.on_authorized(ctx, authorized(released.job_id))
    assert pushes.sent == []  # nothing before the commit
    await ctx.commit()
    assert [(x, key, s.job_id, s.state, s.reason) for x, key, s in pushes.sent] == [
        ("platen.replies", f"decision.test.{released.job_id}", released.job_id, "released", None),
        ("platen.replies", f"decision.test.{denied.job_id}", denied.job_id, "denied", "no"),
        ("platen.replies", f"decision.test.{cancelled.job_id}", cancelled.job_id, "cancelled", "x"),
    ]


async def test_a_deadline_or_an_administrator_closing_a_job_pushes_it_too():
    store = FakeStore()
    ctx = context(store, ADMIN)
    ctx.publisher = pushes = Pushes()
    late = a_job(store, "priced", deadline_at=datetime.now(UTC) - timedelta(seconds=1))
    held = a_job(store, "captured")
    assert await expiry.close(ctx, await store.overdue(), Job.expire) == 1
    await handlers.on_admin_cancel(ctx, ev.AdminCancelJob(job_id=held.job_id, reason="jam"))
    await ctx.commit()
    assert [(key, s.state) for _, key, s in pushes.sent] == [
        (f"decision.test.{late.job_id}", "cancelled"),
        (f"decision.test.{held.job_id}", "cancelled"),
    ]


async def test_a_push_that_fails_is_only_logged():
    """Committed already: the backend's slow check finds the decision."""

    class Down:
        async def publish(self, *args, **kwargs) -> None:
            raise ConnectionError("broker gone")

    store = FakeStore()
    ctx = context(store)
    ctx.publisher = Down()
    job = a_job(store, "priced")
    await handlers.on_authorized(ctx, authorized(job.job_id))
    await ctx.commit()  # does not raise
    assert store.jobs[job.job_id].state == "released"


# ------------------------------------------------------------- the CUPS backend's reports


async def test_outcomes_as_the_backend_reports_them():
    store = FakeStore()
    ctx = context(store)
    printed = a_job(store, "released")
    interrupted = a_job(store, "released")
    failed = a_job(store, "released")
    late = a_job(store, "unconfirmed", reason=UNREPORTED)
    waiting = a_job(store, "priced")
    replies = [
        await handlers.on_outcome(ctx, ev.ReportOutcome(job_id=printed.job_id, printed=True)),
        await handlers.on_outcome(
            ctx, ev.ReportOutcome(job_id=interrupted.job_id, printed=True, interrupted=True)
        ),
        await handlers.on_outcome(
            ctx, ev.ReportOutcome(job_id=failed.job_id, printed=False, reason="status 1")
        ),
        await handlers.on_outcome(
            ctx, ev.ReportOutcome(job_id=late.job_id, printed=False, reason="status 1")
        ),
        await handlers.on_outcome(ctx, ev.ReportOutcome(job_id=waiting.job_id, printed=True)),
        await handlers.on_outcome(ctx, ev.ReportOutcome(job_id=uuid.uuid4(), printed=True)),
    ]
    assert [r.state for r in replies] == [
        "printed",
        "printed",
        "failed",
        "unconfirmed",
        "priced",
        "unknown",
    ]
    assert store.jobs[interrupted.job_id].reason == INTERRUPTED
    assert store.jobs[failed.job_id].reason == "status 1"
    assert "after the release timeout" in store.jobs[late.job_id].reason
    assert replies[3].reason == store.jobs[late.job_id].reason
    assert [(type(m), m.job_id) for m in ctx.messages()] == [
        (ev.JobPrinted, printed.job_id),
        (ev.JobPrinted, interrupted.job_id),
        (ev.JobFailed, failed.job_id),
    ]


async def test_a_cancel_in_cups_is_free_only_until_printing_starts():
    store = FakeStore()
    ctx = context(store)
    states = ("priced", "released", "released", "unconfirmed")
    waiting, released, printing, charged = (a_job(store, state) for state in states)
    assert (await on_heartbeat(ctx, ev.KeepJobAlive(job_id=printing.job_id))).state == "released"
    assert store.jobs[printing.job_id].printing_started
    replies = {
        j.job_id: await on_cancel(ctx, ev.CancelJob(job_id=j.job_id))
        for j in (waiting, released, printing, charged)
    }
    assert {j: r.state for j, r in replies.items()} == {
        waiting.job_id: "cancelled",
        released.job_id: "cancelled",
        printing.job_id: "released",
        charged.job_id: "unconfirmed",
    }
    assert store.jobs[released.job_id].reason == "cancelled in CUPS"
    assert sorted((m.job_id, m.reason) for m in ctx.messages(ev.JobCancelled)) == sorted(
        [(waiting.job_id, "cancelled in CUPS"), (released.job_id, "cancelled in CUPS")]
    )
    assert len(ctx.emitted) == 2


async def test_heartbeats_keep_only_released_jobs_alive():
    store = FakeStore()
    ctx = context(store)
    done = a_job(store, "printed")
    assert (await on_heartbeat(ctx, ev.KeepJobAlive(job_id=done.job_id))).state == "printed"
    assert not store.jobs[done.job_id].printing_started
    assert (await on_heartbeat(ctx, ev.KeepJobAlive(job_id=uuid.uuid4()))).state == "unknown"


async def test_another_print_servers_job_is_out_of_reach():
    store = FakeStore()
    ctx = context(store)
    theirs = a_job(store, "released", server="other")
    for reply in (
        await on_cancel(ctx, ev.CancelJob(job_id=theirs.job_id)),
        await on_heartbeat(ctx, ev.KeepJobAlive(job_id=theirs.job_id)),
        await handlers.on_outcome(ctx, ev.ReportOutcome(job_id=theirs.job_id, printed=False)),
        await handlers.on_status(ctx, ev.GetJobStatus(job_id=theirs.job_id)),
    ):
        assert isinstance(reply, ErrorReply)
        assert reply.error == "this job was not submitted by this print server"
    assert store.jobs[theirs.job_id].state == "released"
    assert not store.jobs[theirs.job_id].printing_started
    assert ctx.emitted == []
    # The administrator may ask about it.
    status = await handlers.on_status(context(store, ADMIN), ev.GetJobStatus(job_id=theirs.job_id))
    assert status.state == "released"


# ------------------------------------------------------------------ deadlines (expiry)


async def test_deadlines_close_jobs_through_the_store():
    store = FakeStore()
    ctx = context(store, None)
    late = a_job(store, "priced", deadline_at=datetime.now(UTC) - timedelta(seconds=1))
    waiting = a_job(store, "captured", deadline_at=datetime.now(UTC) + timedelta(hours=1))
    silent = store.put(
        Job(uuid.uuid4(), "bob", "lab", "b.pdf", "released", source="cups", pages=1),
        updated=timedelta(minutes=2),
    )
    assert await expiry.close(ctx, await store.overdue(), Job.expire) == 1
    assert await expiry.close(ctx, await store.unreported(60.0), Job.mark_unconfirmed) == 1
    assert (store.jobs[late.job_id].state, store.jobs[late.job_id].reason) == (
        "cancelled",
        EXPIRED,
    )
    assert store.jobs[waiting.job_id].state == "captured"
    assert store.jobs[silent.job_id].state == "unconfirmed"
    assert [(type(m), m.job_id, m.reason) for m in ctx.messages()] == [
        (ev.JobCancelled, late.job_id, EXPIRED),
        (ev.JobUnconfirmed, silent.job_id, UNREPORTED),
    ]
    assert all(e.marks == {} for e in ctx.emitted)
    # Once: nothing is overdue any more.
    assert await expiry.close(ctx, await store.overdue(), Job.expire) == 0


# --------------------------------------------------------------------- admin queries


async def test_queue_identity_modes_and_job_listing():
    store = FakeStore()
    ctx = context(store, ADMIN)
    assert (await print_identity.on_get(ctx, GetPrinterIdentity(printer="lab"))).mode == "desktop"
    await print_identity.on_set(ctx, SetPrinterIdentity(printer="lab", mode="authenticated"))
    await print_identity.on_set(ctx, SetPrinterIdentity(printer="hall", mode="trusted"))
    got = await print_identity.on_get(ctx, GetPrinterIdentity(printer="lab"))
    assert (got.mode, got.explicit) == ("authenticated", True)
    listed = await print_identity.on_list(ctx, ListPrinterIdentities(mode="trusted"))
    assert [(p.printer, p.mode) for p in listed.printers] == [("hall", "trusted")]
    first = a_job(store, "unconfirmed")
    a_job(store, "printed")
    jobs = (await handlers.on_list(ctx, ev.ListJobs(state="unconfirmed"))).jobs
    assert [j.job_id for j in jobs] == [first.job_id]
    assert len((await handlers.on_list(ctx, ev.ListJobs(user="alice"))).jobs) == 2


async def test_each_job_closed_by_its_deadline_carries_only_its_own_marks():
    store = FakeStore()
    ctx = context(store, None)
    overdue = datetime.now(UTC) - timedelta(seconds=1)
    trusted = a_job(store, "priced", deadline_at=overdue, identity="trusted")
    plain = a_job(store, "priced", deadline_at=overdue, identity="present")
    assert await expiry.close(ctx, await store.overdue(), Job.expire) == 2
    marks = {e.message.job_id: e.marks for e in ctx.emitted}
    assert marks == {trusted.job_id: {"identity": "trusted"}, plain.job_id: {}}
    assert ctx.marks == {}


def test_documents_are_analysed_before_the_transaction_of_their_delivery():
    """What the dispatcher runs for a submission and a quote: the analysis first, outside
    the transaction (`outside_transaction`), the handler then records the outcome."""
    commands = SPEC.subscriptions.handlers("commands")
    assert commands[ev.SubmitJob].before_transaction is handlers.analyse_submission
    assert commands[ev.AnalyseDocument].before_transaction is analyse_only.analyse_for_quote
