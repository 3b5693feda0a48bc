"""Putting one message on one user's desktop queue (through the outbox)."""

from __future__ import annotations

import uuid

from platen.events.base import Message
from platen.events.desktop import DESKTOP_KINDS
from platen.events.routing import DESKTOP, desktop_key
from platen.messaging.handling import HandlerContext


async def send(
    ctx: HandlerContext,
    login: str,
    notice: Message,
    job_id: uuid.UUID | None = None,
    *,
    expiration_ms: int | None = None,
) -> None:
    kind = DESKTOP_KINDS[type(notice)]
    # Desktop messages are mandatory: the outbox relay declares the user's queue before it
    # publishes, after this transaction commits.
    await ctx.emit(
        notice,
        exchange=DESKTOP,
        routing_key=desktop_key(login, kind),
        correlation_id=str(job_id) if job_id else None,
        expiration_ms=expiration_ms,
    )
    await ctx.store.record_delivery(login, kind, job_id)
    # A notice about a job names it; any other keeps what the dispatcher bound (an account).
    about = {"job_id": str(job_id)} if job_id else {}
    ctx.log.info("desktop message queued", user=login, kind=kind, **about)
