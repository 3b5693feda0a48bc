"""Which print server a job belongs to: recorded at submission (`Job.print_server`) and
checked on every request about the job (rules in `senders`)."""

from __future__ import annotations

import uuid

from platen.events.system import ErrorReply
from platen.job_capture.senders import Sender, refuse_access, refuse_submission
from platen.messaging.handling import HandlerContext


def _refused(ctx: HandlerContext, sender: Sender, reason: str) -> ErrorReply:
    # Worth an administrator's attention: a misconfigured or compromised print server.
    ctx.log.warning(
        "request refused", reason=reason, sender=sender.user_id, print_server=sender.print_server
    )
    return ErrorReply(error=reason)


async def check_access(ctx: HandlerContext, job_id: uuid.UUID) -> ErrorReply | None:
    """An error reply when the sender may not ask about or report on `job_id` (a job
    that does not exist is anybody's to ask about: it is "unknown")."""
    sender = Sender(ctx.user_id)
    known, owner = await ctx.store.owner(job_id)
    reason = refuse_access(sender, owner if known else sender.print_server)
    return None if reason is None else _refused(ctx, sender, reason)


async def check_submission(
    ctx: HandlerContext, job_id: uuid.UUID, source: str
) -> ErrorReply | None:
    sender = Sender(ctx.user_id)
    reason = refuse_submission(sender, source)
    if reason is not None:
        return _refused(ctx, sender, reason)
    return await check_access(ctx, job_id)
