"""job-capture's message handlers: capture, state changes, release, listing."""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from datetime import UTC, datetime, timedelta

from platen.events.jobs import (
    GetJobStatus,
    JobAuthorized,
    JobCancelled,
    JobCaptured,
    JobDenied,
    JobFailed,
    JobList,
    JobPriced,
    JobPrinted,
    JobStatus,
    JobSubmitted,
    JobSummary,
    ListJobs,
    ReportOutcome,
    SubmitJob,
)
from platen.events.system import ErrorReply
from platen.job_capture import ownership
from platen.job_capture.analysis import UnreadableDocument, analyse
from platen.job_capture.backend_reports import (
    INTERRUPTED,
    cancelled_before_capture,
    lock_job_id,
    note_late_failure,
)
from platen.job_capture.jobs import after_outcome, can_move
from platen.job_capture.layout import layout
from platen.job_capture.print_identity import identify
from platen.messaging.handling import HandlerContext

SERVICE = "job-capture"
MAX_DOCUMENT_BYTES = int(os.environ.get("PLATEN_MAX_DOCUMENT_BYTES", str(16 * 1024 * 1024)))
DEFAULT_DEADLINE_SECONDS = int(os.environ.get("PLATEN_JOB_DEADLINE_SECONDS", "600"))


async def on_submit(ctx: HandlerContext, cmd: SubmitJob) -> JobSubmitted | ErrorReply:
    await lock_job_id(ctx, cmd.job_id)
    refused = await ownership.check_submission(ctx, cmd.job_id, cmd.source)
    if refused is not None:
        return refused
    exists = await ctx.conn.fetchval("SELECT 1 FROM jobs WHERE job_id = $1", cmd.job_id)
    if exists:
        return JobSubmitted(job_id=cmd.job_id)
    if await cancelled_before_capture(ctx, cmd.job_id):
        ctx.log.info("submission of a job cancelled in CUPS dropped")
        return JobSubmitted(job_id=cmd.job_id)
    identity = await identify(ctx, cmd)
    size = len(cmd.document)
    reason = None
    analysis = None
    if size > MAX_DOCUMENT_BYTES:
        reason = f"the document is too large ({size} bytes; the limit is {MAX_DOCUMENT_BYTES})"
    else:
        try:
            # Ghostscript may take seconds: keep the event loop free for other deliveries.
            analysis = await asyncio.to_thread(analyse, cmd.document)
        except UnreadableDocument as exc:
            reason = str(exc)
        except Exception:
            # An analyser crash must not send the command round the queue until it is
            # dead-lettered: the job is recorded and denied, and the user told.
            ctx.log.exception("document analysis crashed")
            reason = "the document could not be analysed"
    now = datetime.now(UTC)
    deadline = now + timedelta(seconds=cmd.deadline_seconds or DEFAULT_DEADLINE_SECONDS)
    await ctx.conn.execute(
        """INSERT INTO jobs (job_id, user_login, printer, document_name, size_bytes, copies,
                             state, reason, submitted_at, source, cups_job_id, origin_host,
                             deadline_at, duplex, number_up, color_mode)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)""",
        cmd.job_id,
        cmd.user,
        cmd.printer,
        cmd.document_name,
        size,
        cmd.copies,
        "denied" if reason else "captured",
        reason,
        now,
        cmd.source,
        cmd.cups_job_id,
        cmd.origin_host,
        deadline,
        cmd.duplex,
        cmd.number_up,
        cmd.color_mode,
    )
    await ownership.record(ctx, cmd.job_id)
    await ctx.conn.execute("UPDATE jobs SET identity = $2 WHERE job_id = $1", cmd.job_id, identity)
    if reason or analysis is None:
        ctx.log.info("job refused at capture", reason=reason, size_bytes=size)
        await ctx.emit(
            JobDenied(
                job_id=cmd.job_id,
                user=cmd.user,
                printer=cmd.printer,
                document_name=cmd.document_name,
                reason=reason or "the document could not be analysed",
                denied_by=SERVICE,
            ),
            correlation_id=str(cmd.job_id),
        )
        return JobSubmitted(job_id=cmd.job_id)
    sheet = layout(analysis, duplex=cmd.duplex, number_up=cmd.number_up, color_mode=cmd.color_mode)
    # Recorded so that the printed bytes can be checked against the analysed ones.
    document_sha256 = hashlib.sha256(cmd.document).hexdigest()
    groups = [{"paper": p, "color": c, "count": n} for p, c, n in sheet.side_groups]
    await ctx.conn.execute(
        """UPDATE jobs SET pages = $2, format = $3, color_pages = $4, paper_sizes = $5,
                           sides = $6, sheets = $7, side_groups = $8, analysis_ms = $9,
                           document_sha256 = $10
           WHERE job_id = $1""",
        cmd.job_id,
        analysis.pages,
        analysis.format,
        list(analysis.color_pages),
        dict(sheet.paper_sizes),
        sheet.sides,
        sheet.sheets,
        groups,
        analysis.analysis_ms,
        document_sha256,
    )
    if cmd.source == "api":
        # A CUPS job's document stays with the CUPS backend; an API job's waits here.
        await ctx.conn.execute(
            "INSERT INTO spool (job_id, document) VALUES ($1, $2)", cmd.job_id, cmd.document
        )
    ctx.log.info(
        "job captured",
        pages=analysis.pages,
        color_pages=len(analysis.color_pages),
        copies=cmd.copies,
        sides=sheet.sides,
        size_bytes=size,
        analysis_ms=analysis.analysis_ms,
        source=cmd.source,
        document_sha256=document_sha256,
    )
    await ctx.emit(
        JobCaptured(
            job_id=cmd.job_id,
            user=cmd.user,
            printer=cmd.printer,
            document_name=cmd.document_name,
            pages=analysis.pages,
            copies=cmd.copies,
            size_bytes=size,
            captured_at=now,
            format=analysis.format,
            color_pages=list(analysis.color_pages),
            paper_sizes=dict(sheet.paper_sizes),
            duplex=cmd.duplex,
            number_up=cmd.number_up,
            color_mode=cmd.color_mode,
            sides=sheet.sides,
            sheets=sheet.sheets,
            side_groups=groups,
            analysis_ms=analysis.analysis_ms,
            identity=identity,
            origin_host=cmd.origin_host,
        ),
        correlation_id=str(cmd.job_id),
    )
    return JobSubmitted(job_id=cmd.job_id)


async def _move(ctx: HandlerContext, job_id: uuid.UUID, target: str, **changes: object):
    """Lock the job and move it to `target`; None when the move is not allowed."""
    job = await ctx.conn.fetchrow("SELECT * FROM jobs WHERE job_id = $1 FOR UPDATE", job_id)
    if job is None:
        ctx.log.warning("event for an unknown job ignored", target=target)
        return None
    if job["identity"] == "trusted":
        ctx.log = ctx.log.bind(identity="trusted")  # every line about the job says so
    if not can_move(job["state"], target):
        ctx.log.info("state change ignored", state=job["state"], target=target)
        return None
    sets = ", ".join(f"{col} = ${i}" for i, col in enumerate(changes, start=3))
    await ctx.conn.execute(
        f"UPDATE jobs SET state = $2, updated_at = now(){', ' + sets if sets else ''} "
        "WHERE job_id = $1",
        job_id,
        target,
        *changes.values(),
    )
    return job


async def on_priced(ctx: HandlerContext, event: JobPriced) -> None:
    await _move(ctx, event.job_id, "priced", cost=event.cost)


async def on_authorized(ctx: HandlerContext, event: JobAuthorized) -> None:
    job = await _move(ctx, event.job_id, "released")
    if job is None:
        return
    ctx.log.info("job released", source=job["source"])
    if job["source"] == "cups":
        return  # the CUPS backend sees "released", prints, and reports the outcome
    # A job submitted by a program has no physical printer: releasing it is printing it.
    await ctx.conn.execute("DELETE FROM spool WHERE job_id = $1", event.job_id)
    await _printed(ctx, job)


async def _printed(ctx: HandlerContext, job, *, interrupted: bool = False) -> None:
    if interrupted:
        await _move(ctx, job["job_id"], "printed", reason=INTERRUPTED)
    else:
        await _move(ctx, job["job_id"], "printed")
    ctx.log.info(
        "job printed",
        pages=job["pages"],
        copies=job["copies"],
        interrupted=interrupted,
        after_timeout=job["state"] == "unconfirmed",
    )
    await ctx.emit(
        JobPrinted(
            job_id=job["job_id"],
            user=job["user_login"],
            printer=job["printer"],
            document_name=job["document_name"],
            pages=job["pages"],
            copies=job["copies"],
            printed_at=datetime.now(UTC),
        ),
        correlation_id=str(job["job_id"]),
    )


async def on_outcome(ctx: HandlerContext, cmd: ReportOutcome) -> JobStatus | ErrorReply:
    if (refused := await ownership.check_access(ctx, cmd.job_id)) is not None:
        return refused
    job = await ctx.conn.fetchrow("SELECT * FROM jobs WHERE job_id = $1 FOR UPDATE", cmd.job_id)
    if job is None:
        return JobStatus(job_id=cmd.job_id, state="unknown")
    target = after_outcome(job["state"], cmd.printed)
    if target is not None:
        if cmd.printed:
            await _printed(ctx, job, interrupted=cmd.interrupted)
        else:
            reason = cmd.reason or "the printer did not print the job"
            await _move(ctx, cmd.job_id, "failed", reason=reason)
            ctx.log.info("job failed", reason=reason)
            await ctx.emit(
                JobFailed(
                    job_id=cmd.job_id,
                    user=job["user_login"],
                    printer=job["printer"],
                    document_name=job["document_name"],
                    reason=reason,
                ),
                correlation_id=str(cmd.job_id),
            )
    elif job["state"] == "unconfirmed":
        await note_late_failure(ctx, job, cmd.reason)
    else:
        ctx.log.warning("outcome for a job that was not released ignored", state=job["state"])
    return await on_status(ctx, GetJobStatus(job_id=cmd.job_id))


async def on_status(ctx: HandlerContext, query: GetJobStatus) -> JobStatus | ErrorReply:
    if (refused := await ownership.check_access(ctx, query.job_id)) is not None:
        return refused
    row = await ctx.conn.fetchrow("SELECT state, reason FROM jobs WHERE job_id = $1", query.job_id)
    if row is None:
        return JobStatus(job_id=query.job_id, state="unknown")
    return JobStatus(job_id=query.job_id, state=row["state"], reason=row["reason"])


async def on_denied(ctx: HandlerContext, event: JobDenied) -> None:
    if await _move(ctx, event.job_id, "denied", reason=event.reason) is not None:
        await ctx.conn.execute("DELETE FROM spool WHERE job_id = $1", event.job_id)
        ctx.log.info("job denied", reason=event.reason, denied_by=event.denied_by)


async def on_cancelled(ctx: HandlerContext, event: JobCancelled) -> None:
    if await _move(ctx, event.job_id, "cancelled", reason=event.reason) is not None:
        await ctx.conn.execute("DELETE FROM spool WHERE job_id = $1", event.job_id)
        ctx.log.info("job cancelled", reason=event.reason)


async def on_list(ctx: HandlerContext, query: ListJobs) -> JobList:
    rows = await ctx.conn.fetch(
        """SELECT * FROM jobs WHERE ($1::text IS NULL OR user_login = $1)
             AND ($3::text IS NULL OR state = $3)
           ORDER BY submitted_at DESC LIMIT $2""",
        query.user,
        query.limit,
        query.state,
    )
    return JobList(
        jobs=[
            JobSummary(
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
            )
            for r in rows
        ]
    )
