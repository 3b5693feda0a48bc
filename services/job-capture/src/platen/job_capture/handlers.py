"""job-capture's message handlers: capture, state changes, release, listing.

Orchestration only: load the job through `ctx.store`, ask it to move (`domain.Job`), save
it through `ctx.store`, publish what the move queued. The rules are in `domain`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import structlog

from platen.events.jobs import (
    AdminCancelJob,
    GetJobStatus,
    JobAuthorized,
    JobCancelled,
    JobDenied,
    JobList,
    JobPriced,
    JobStatus,
    JobSubmitted,
    JobSummary,
    ListJobs,
    ReportOutcome,
    SubmitJob,
)
from platen.events.system import ErrorReply
from platen.job_capture import metrics, ownership
from platen.job_capture.analysis import Analysis, UnreadableDocument, document_format
from platen.job_capture.decisions import tell_backend
from platen.job_capture.domain import (
    NOT_ANALYSED,
    IllegalTransition,
    Job,
    admin_may_not_cancel,
    cancelled_by_admin,
    refuse_format,
    too_large,
)
from platen.job_capture.domain import SERVICE as SERVICE  # the producer name tests run as
from platen.job_capture.isolation import analyse
from platen.job_capture.print_identity import identify
from platen.job_capture.senders import Sender
from platen.job_capture.subscriptions import subscribe
from platen.messaging.handling import HandlerContext, outside_transaction
from platen.messaging.senders import ADMIN
from platen.messaging.settings import setting

max_document_bytes = setting("PLATEN_MAX_DOCUMENT_BYTES", int, str(16 * 1024 * 1024))
default_deadline_seconds = setting("PLATEN_JOB_DEADLINE_SECONDS", int, "600")


async def load(ctx: HandlerContext, job_id: uuid.UUID) -> Job | None:
    """The job, locked for this delivery, and marked: every later log line about it, here
    and in the services that handle what this delivery emits, says so if it is trusted."""
    job = await ctx.store.get(job_id)
    if job is not None:
        ctx.mark(**job.marks)
    return job


async def publish(ctx: HandlerContext, job: Job) -> None:
    """Emit, in this transaction, what the job's transitions queued."""
    while job.events:
        await ctx.emit(job.events.pop(0), correlation_id=str(job.job_id))


async def analyse_submission(cmd: SubmitJob) -> Analysis | str:
    """What the submitted document is, or why it is refused (shown to the user). Runs
    before on_submit's transaction (`outside_transaction`), in a worker process of its own
    (`isolation`): a hostile document costs neither a pool connection nor an open
    transaction, nor anything of the service's own."""
    reason = too_large(len(cmd.document), max_document_bytes()) or refuse_format(
        document_format(cmd.document), cmd.source
    )
    if reason is not None:
        return reason
    try:
        with metrics.analysing():
            return await analyse(cmd.document, cmd.user)
    except UnreadableDocument as exc:
        return str(exc)
    except Exception:
        # An analyser crash must not send the command round the queue until it is
        # dead-lettered: the job is recorded and denied, and the user told.
        structlog.get_logger(__name__).exception(
            "document analysis crashed", job_id=str(cmd.job_id)
        )
        return NOT_ANALYSED


@subscribe.command(SubmitJob)
async def on_submit(ctx: HandlerContext, cmd: SubmitJob) -> JobSubmitted | ErrorReply:
    await ctx.store.lock_job_id(cmd.job_id)
    refused = await ownership.check_submission(ctx, cmd.job_id, cmd.source)
    if refused is not None:
        return refused
    if await ctx.store.exists(cmd.job_id):
        return JobSubmitted(job_id=cmd.job_id)
    if await ctx.store.cancelled_before_capture(cmd.job_id):
        ctx.log.info("submission of a job cancelled in CUPS dropped")
        return JobSubmitted(job_id=cmd.job_id)
    identity = await identify(ctx, cmd)
    # Analysed before this transaction opened; only a caller that skips the dispatcher
    # (a unit test's fake context) gets here without it.
    outcome = ctx.prepared if ctx.prepared is not None else await analyse_submission(cmd)
    analysis = outcome if isinstance(outcome, Analysis) else None
    reason = None if analysis is not None else str(outcome)
    job = Job.capture(
        cmd,
        now=datetime.now(UTC),
        deadline_seconds=cmd.deadline_seconds or default_deadline_seconds(),
        identity=identity,
        print_server=Sender(ctx.user_id).print_server,
        analysis=analysis,
        refused=reason,
    )
    await ctx.store.add(job)
    if job.spooled:
        await ctx.store.spool(job.job_id, cmd.document)
    if job.document is None:
        ctx.log.info("job refused at capture", reason=job.reason, size_bytes=job.size_bytes)
    else:
        ctx.log.info(
            "job captured",
            pages=job.document.pages,
            color_pages=len(job.document.color_pages),
            copies=job.copies,
            sides=job.document.sides,
            size_bytes=job.size_bytes,
            analysis_ms=job.document.analysis_ms,
            source=job.source,
            document_sha256=job.document_sha256,
        )
    await publish(ctx, job)
    return JobSubmitted(job_id=cmd.job_id)


outside_transaction(on_submit, analyse_submission)


async def _transition(
    ctx: HandlerContext, job_id: uuid.UUID, target: str, change: Callable[[Job], None]
) -> Job | None:
    """Load the job, apply `change` (one of its transitions) and save it; None when the
    job is unknown or refuses the move (an event that came late, or twice)."""
    job = await load(ctx, job_id)
    if job is None:
        ctx.log.warning("event for an unknown job ignored", target=target)
        return None
    try:
        change(job)
    except IllegalTransition as exc:
        ctx.log.info("state change ignored", state=exc.state, target=exc.target)
        return None
    await ctx.store.move(job)
    tell_backend(ctx, job)
    return job


def _log_printed(ctx: HandlerContext, job: Job, *, was: str, interrupted: bool = False) -> None:
    ctx.log.info(
        "job printed",
        pages=job.pages,
        copies=job.copies,
        interrupted=interrupted,
        after_timeout=was == "unconfirmed",
    )


@subscribe.event(JobPriced)
async def on_priced(ctx: HandlerContext, event: JobPriced) -> None:
    job = await _transition(ctx, event.job_id, "priced", lambda job: job.price(event.cost))
    if job is not None:
        await ctx.store.note_price(event.job_id, event.color_sides, event.grayscale_sides)


@subscribe.event(JobAuthorized)
async def on_authorized(ctx: HandlerContext, event: JobAuthorized) -> None:
    now = datetime.now(UTC)
    job = await _transition(ctx, event.job_id, "released", lambda job: job.release(now))
    if job is None:
        return
    await ctx.store.note_charge(event.job_id, event.account, event.amount, event.comment)
    ctx.log.info("job released", source=job.source)
    if job.state == "printed":  # a program's job: released is printed
        _log_printed(ctx, job, was="released")
    await publish(ctx, job)


@subscribe.command(ReportOutcome)
async def on_outcome(ctx: HandlerContext, cmd: ReportOutcome) -> JobStatus | ErrorReply:
    if (refused := await ownership.check_access(ctx, cmd.job_id)) is not None:
        return refused
    job = await load(ctx, cmd.job_id)
    if job is None:
        return JobStatus(job_id=cmd.job_id, state="unknown")
    was = job.state
    outcome = job.report_outcome(
        cmd.printed, now=datetime.now(UTC), interrupted=cmd.interrupted, reason=cmd.reason
    )
    if outcome == "printed":
        await ctx.store.move(job)
        _log_printed(ctx, job, was=was, interrupted=cmd.interrupted)
    elif outcome == "failed":
        await ctx.store.move(job)
        ctx.log.info("job failed", reason=job.reason)
    elif outcome == "late failure":
        await ctx.store.note_reason(job)
        ctx.log.warning("failure reported after the release timeout; job stays charged")
    else:
        ctx.log.warning("outcome for a job that was not released ignored", state=job.state)
    await publish(ctx, job)
    return JobStatus(job_id=cmd.job_id, state=job.state, reason=job.reason)


@subscribe.query(GetJobStatus)
async def on_status(ctx: HandlerContext, query: GetJobStatus) -> JobStatus | ErrorReply:
    if (refused := await ownership.check_access(ctx, query.job_id)) is not None:
        return refused
    status = await ctx.store.status(query.job_id)
    if status is None:
        return JobStatus(job_id=query.job_id, state="unknown")
    return JobStatus(job_id=query.job_id, state=status[0], reason=status[1])


@subscribe.event(JobDenied)
async def on_denied(ctx: HandlerContext, event: JobDenied) -> None:
    deny = await _transition(ctx, event.job_id, "denied", lambda job: job.deny(event.reason))
    if deny is not None:
        ctx.log.info("job denied", reason=event.reason, denied_by=event.denied_by)


@subscribe.event(JobCancelled)
async def on_cancelled(ctx: HandlerContext, event: JobCancelled) -> None:
    job = await _transition(
        ctx, event.job_id, "cancelled", lambda job: job.cancel(event.reason, by="event")
    )
    if job is not None:
        ctx.log.info("job cancelled", reason=event.reason)


@subscribe.command(AdminCancelJob, senders=ADMIN)
async def on_admin_cancel(ctx: HandlerContext, cmd: AdminCancelJob) -> JobStatus | ErrorReply:
    """An administrator cancels a job still waiting for a decision: uncharged, and its
    `job.cancelled` voids the ledger's hold and tells the user's desktop why."""
    # Who may send it is checked before this runs (`senders=ADMIN`): no print server.
    job = await load(ctx, cmd.job_id)
    if job is None:
        return ErrorReply(error=f"no job {cmd.job_id}")
    if (refusal := admin_may_not_cancel(job.state)) is not None:
        ctx.log.info("cancel by an administrator refused", state=job.state)
        return ErrorReply(error=refusal)
    was = job.state
    job.cancel(cancelled_by_admin(cmd.reason), by="admin")
    await ctx.store.move(job)
    tell_backend(ctx, job)
    ctx.log.info("job cancelled by an administrator", was=was, reason=job.reason)
    await publish(ctx, job)
    return JobStatus(job_id=job.job_id, state=job.state, reason=job.reason)


@subscribe.query(ListJobs)
async def on_list(ctx: HandlerContext, query: ListJobs) -> JobList:
    # One row past the limit tells the caller the list was cut, without counting them all.
    rows = await ctx.store.recent(
        user=query.user,
        state=query.state,
        limit=query.limit + 1,
        printer=query.printer,
        account=query.account,
        since=query.since,
        until=query.until,
    )
    return JobList(
        jobs=[_summary(r) for r in rows[: query.limit]], truncated=len(rows) > query.limit
    )


def _summary(r) -> JobSummary:
    priced = r["color_sides"] is not None
    return JobSummary(
        job_id=r["job_id"],
        user=r["user_login"],
        printer=r["printer"],
        document_name=r["document_name"],
        pages=r["pages"],
        copies=r["copies"],
        cost=r["cost"],
        state=r["state"],
        reason=r["reason"],
        submitted_at=r["submitted_at"],
        sides=r["color_sides"] + r["grayscale_sides"] if priced else r["sides"],
        color_sides=r["color_sides"],
        grayscale_sides=r["grayscale_sides"],
        duplex=r["duplex"],
        paper_sizes=dict(r["paper_sizes"] or {}),
        account=r["charged_account"],
        amount=r["charged_amount"],
        comment=r["comment"],
        source=r["source"],
        print_server=r["print_server"],
        origin_host=r["origin_host"],
        updated_at=r["updated_at"],
    )
