"""job-capture's message handlers: capture, state changes, release, listing."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime

from platen.events.jobs import (
    JobAuthorized,
    JobCancelled,
    JobCaptured,
    JobDenied,
    JobList,
    JobPriced,
    JobPrinted,
    JobSubmitted,
    JobSummary,
    ListJobs,
    SubmitJob,
)
from platen.job_capture.analysis import UnreadableDocument, analyse
from platen.job_capture.jobs import can_move
from platen.messaging.handling import HandlerContext

SERVICE = "job-capture"
MAX_DOCUMENT_BYTES = int(os.environ.get("PLATEN_MAX_DOCUMENT_BYTES", str(16 * 1024 * 1024)))


async def on_submit(ctx: HandlerContext, cmd: SubmitJob) -> JobSubmitted:
    job_id = str(cmd.job_id)
    exists = await ctx.conn.fetchval("SELECT 1 FROM jobs WHERE job_id = $1", cmd.job_id)
    if exists:
        return JobSubmitted(job_id=cmd.job_id)
    size = len(cmd.document)
    reason = None
    pages = None
    if size > MAX_DOCUMENT_BYTES:
        reason = f"the document is too large ({size} bytes; the limit is {MAX_DOCUMENT_BYTES})"
    else:
        try:
            pages = analyse(cmd.document).pages
        except UnreadableDocument as exc:
            reason = str(exc)
        except Exception:
            # An analyser crash must not send the command round the queue until it is
            # dead-lettered: the job is recorded and denied, and the user told.
            ctx.log.exception("document analysis crashed")
            reason = "the document could not be analysed"
    state = "denied" if reason else "captured"
    now = datetime.now(UTC)
    await ctx.conn.execute(
        """INSERT INTO jobs (job_id, user_login, printer, document_name, size_bytes, pages,
                             copies, state, reason, submitted_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)""",
        cmd.job_id,
        cmd.user,
        cmd.printer,
        cmd.document_name,
        size,
        pages,
        cmd.copies,
        state,
        reason,
        now,
    )
    if reason:
        ctx.log.info("job refused at capture", reason=reason, size_bytes=size)
        await ctx.emit(
            JobDenied(
                job_id=cmd.job_id,
                user=cmd.user,
                printer=cmd.printer,
                document_name=cmd.document_name,
                reason=reason,
                denied_by=SERVICE,
            ),
            correlation_id=job_id,
        )
        return JobSubmitted(job_id=cmd.job_id)
    await ctx.conn.execute(
        "INSERT INTO spool (job_id, document) VALUES ($1, $2)", cmd.job_id, cmd.document
    )
    ctx.log.info("job captured", pages=pages, copies=cmd.copies, size_bytes=size)
    await ctx.emit(
        JobCaptured(
            job_id=cmd.job_id,
            user=cmd.user,
            printer=cmd.printer,
            document_name=cmd.document_name,
            pages=pages,
            copies=cmd.copies,
            size_bytes=size,
            captured_at=now,
        ),
        correlation_id=job_id,
    )
    return JobSubmitted(job_id=cmd.job_id)


async def _move(ctx: HandlerContext, job_id: uuid.UUID, target: str, **changes: object):
    """Lock the job and move it to `target`; None when the move is not allowed."""
    job = await ctx.conn.fetchrow("SELECT * FROM jobs WHERE job_id = $1 FOR UPDATE", job_id)
    if job is None:
        ctx.log.warning("event for an unknown job ignored", target=target)
        return None
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
    # No physical printer yet: releasing the job is printing it. The CUPS backend
    # replaces this with the real printer's outcome.
    await ctx.conn.execute("DELETE FROM spool WHERE job_id = $1", event.job_id)
    await _move(ctx, event.job_id, "printed")
    ctx.log.info("job printed", pages=job["pages"], copies=job["copies"])
    await ctx.emit(
        JobPrinted(
            job_id=event.job_id,
            user=job["user_login"],
            printer=job["printer"],
            document_name=job["document_name"],
            pages=job["pages"],
            copies=job["copies"],
            printed_at=datetime.now(UTC),
        ),
        correlation_id=str(event.job_id),
    )


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
           ORDER BY submitted_at DESC LIMIT $2""",
        query.user,
        query.limit,
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
