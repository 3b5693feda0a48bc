"""What the CUPS backend tells job-capture about a released job besides its outcome: that
it was cancelled in CUPS before the printer was sent anything, and that the printer is
still being sent it (heartbeat).

The rules (which report moves a job where) are in `domain`; this module applies them.
"""

from __future__ import annotations

from platen.events.jobs import CancelJob, JobStatus, KeepJobAlive
from platen.events.system import ErrorReply
from platen.job_capture import ownership
from platen.job_capture.domain import INTERRUPTED, IllegalTransition
from platen.job_capture.handlers import load, publish
from platen.job_capture.subscriptions import subscribe
from platen.messaging.handling import HandlerContext

# The reason an interrupted job carries, where the backend's reports are handled.
__all__ = ["INTERRUPTED", "on_cancel", "on_heartbeat"]


@subscribe.command(CancelJob)
async def on_cancel(ctx: HandlerContext, cmd: CancelJob) -> JobStatus | ErrorReply:
    """The backend was stopped (CUPS `cancel`) before it started the printer's backend:
    the printer has none of the job, so it is cancelled and its hold released."""
    await ctx.store.lock_job_id(cmd.job_id)
    if (refused := await ownership.check_access(ctx, cmd.job_id)) is not None:
        return refused  # another print server's job
    job = await load(ctx, cmd.job_id)
    if job is None:
        # The submission has not been handled yet (or never will be): it will be dropped,
        # or else the job would be released with no backend left to print it, and charged.
        await ctx.store.cancel_before_capture(cmd.job_id, cmd.reason)
        ctx.log.info("job cancelled in CUPS before its submission arrived")
        return JobStatus(job_id=cmd.job_id, state="unknown")
    was = job.state
    try:
        job.cancel(cmd.reason, by="cups")
    except IllegalTransition:
        # Printing had started (or the job was closed already): cancelling now would let
        # a printed job go free. The backend reports such a job as interrupted instead.
        ctx.log.info("cancel from CUPS ignored", state=job.state)
        return JobStatus(job_id=cmd.job_id, state=job.state, reason=job.reason)
    await ctx.store.move(job)
    ctx.log.info("job cancelled in CUPS before printing", was=was, reason=job.reason)
    await publish(ctx, job)
    return JobStatus(job_id=cmd.job_id, state=job.state, reason=job.reason)


@subscribe.command(KeepJobAlive)
async def on_heartbeat(ctx: HandlerContext, cmd: KeepJobAlive) -> JobStatus | ErrorReply:
    """The printer is still being sent the job: push its release timeout back."""
    if (refused := await ownership.check_access(ctx, cmd.job_id)) is not None:
        return refused  # another print server's job: its timeout is not ours to push back
    job = await load(ctx, cmd.job_id)
    if job is None:
        return JobStatus(job_id=cmd.job_id, state="unknown")
    if job.keep_alive():
        await ctx.store.keep_alive(job)
    return JobStatus(job_id=cmd.job_id, state=job.state, reason=job.reason)
