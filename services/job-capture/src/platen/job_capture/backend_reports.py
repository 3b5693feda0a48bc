"""What the CUPS backend tells job-capture about a released job besides its outcome: that
it was cancelled in CUPS before the printer was sent anything, that the printer is still
being sent it (heartbeat), and the bookkeeping for a failure reported too late.

The rules (which report moves a job where) are in `jobs.py`; this module applies them.
"""

from __future__ import annotations

import uuid

from platen.events.jobs import CancelJob, JobCancelled, JobStatus, KeepJobAlive
from platen.events.system import ErrorReply
from platen.job_capture import ownership
from platen.job_capture.jobs import cancelled_in_cups
from platen.messaging.handling import HandlerContext

INTERRUPTED = "cancelled in CUPS while the printer was being sent it: charged as printed"
LATE_FAILURE = (
    "the print server reported after the release timeout that the printer failed ({}); "
    "still charged: an administrator may refund it"
)


async def lock_job_id(ctx: HandlerContext, job_id: uuid.UUID) -> None:
    """Serialise a job's submission and its cancellation, even before the job's row
    exists: a cancel handled while the submission is analysed waits for it."""
    await ctx.conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 11))", str(job_id))


async def cancelled_before_capture(ctx: HandlerContext, job_id: uuid.UUID) -> bool:
    """Whether CUPS cancelled this job before its submission was handled (the caller holds
    `lock_job_id`)."""
    return bool(
        await ctx.conn.fetchval("SELECT 1 FROM cancelled_before_capture WHERE job_id = $1", job_id)
    )


async def on_cancel(ctx: HandlerContext, cmd: CancelJob) -> JobStatus | ErrorReply:
    """The backend was stopped (CUPS `cancel`) before it started the printer's backend:
    the printer has none of the job, so it is cancelled and its hold released."""
    await lock_job_id(ctx, cmd.job_id)
    if (refused := await ownership.check_access(ctx, cmd.job_id)) is not None:
        return refused  # another print server's job
    job = await ctx.conn.fetchrow("SELECT * FROM jobs WHERE job_id = $1 FOR UPDATE", cmd.job_id)
    if job is None:
        # The submission has not been handled yet (or never will be): it will be dropped,
        # or else the job would be released with no backend left to print it, and charged.
        await ctx.conn.execute(
            "INSERT INTO cancelled_before_capture (job_id, reason) VALUES ($1, $2) "
            "ON CONFLICT DO NOTHING",
            cmd.job_id,
            cmd.reason,
        )
        ctx.log.info("job cancelled in CUPS before its submission arrived")
        return JobStatus(job_id=cmd.job_id, state="unknown")
    if not cancelled_in_cups(job["state"], printing_started=job["alive_at"] is not None):
        # Printing had started (or the job was closed already): cancelling now would let
        # a printed job go free. The backend reports such a job as interrupted instead.
        ctx.log.info("cancel from CUPS ignored", state=job["state"])
        return JobStatus(job_id=cmd.job_id, state=job["state"], reason=job["reason"])
    reason = cmd.reason
    await ctx.conn.execute(
        "UPDATE jobs SET state = 'cancelled', reason = $2, updated_at = now() WHERE job_id = $1",
        cmd.job_id,
        reason,
    )
    await ctx.conn.execute("DELETE FROM spool WHERE job_id = $1", cmd.job_id)
    ctx.log.info("job cancelled in CUPS before printing", was=job["state"], reason=reason)
    await ctx.emit(
        JobCancelled(
            job_id=cmd.job_id,
            user=job["user_login"],
            printer=job["printer"],
            document_name=job["document_name"],
            reason=reason,
        ),
        correlation_id=str(cmd.job_id),
    )
    return JobStatus(job_id=cmd.job_id, state="cancelled", reason=reason)


async def on_heartbeat(ctx: HandlerContext, cmd: KeepJobAlive) -> JobStatus | ErrorReply:
    """The printer is still being sent the job: push its release timeout back."""
    if (refused := await ownership.check_access(ctx, cmd.job_id)) is not None:
        return refused  # another print server's job: its timeout is not ours to push back
    row = await ctx.conn.fetchrow(
        """UPDATE jobs SET alive_at = now() WHERE job_id = $1 AND state = 'released'
           RETURNING state, reason""",
        cmd.job_id,
    )
    if row is None:
        row = await ctx.conn.fetchrow(
            "SELECT state, reason FROM jobs WHERE job_id = $1", cmd.job_id
        )
    if row is None:
        return JobStatus(job_id=cmd.job_id, state="unknown")
    return JobStatus(job_id=cmd.job_id, state=row["state"], reason=row["reason"])


async def note_late_failure(ctx: HandlerContext, job, reported: str | None) -> None:
    """A failure reported for a job already charged as unconfirmed: recorded for the
    administrator who reviews unconfirmed jobs, charge unchanged (see `jobs.after_outcome`)."""
    reason = LATE_FAILURE.format(reported or "no reason given")
    await ctx.conn.execute(
        "UPDATE jobs SET reason = $2, updated_at = now() WHERE job_id = $1",
        job["job_id"],
        reason,
    )
    ctx.log.warning("failure reported after the release timeout; job stays charged")
