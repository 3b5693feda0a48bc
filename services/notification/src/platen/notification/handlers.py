"""Turn domain events into messages for one user's desktop."""

from __future__ import annotations

import uuid

from platen.events.accounts import BalanceChanged, BalanceLow, JobCharged, UserAdded
from platen.events.base import Message
from platen.events.desktop import (
    DESKTOP_KINDS,
    BalanceNotice,
    DeniedNotice,
    LowBalanceNotice,
    PrintedNotice,
)
from platen.events.jobs import JobDenied
from platen.events.routing import DESKTOP, desktop_key
from platen.messaging.handling import HandlerContext
from platen.notification import identities


async def _send(
    ctx: HandlerContext, login: str, notice: Message, job_id: uuid.UUID | None = None
) -> None:
    kind = DESKTOP_KINDS[type(notice)]
    # The queue must exist before the relay publishes: desktop messages are mandatory.
    await ctx.publisher.ensure_desktop_queue(login)
    await ctx.emit(
        notice,
        exchange=DESKTOP,
        routing_key=desktop_key(login, kind),
        correlation_id=str(job_id) if job_id else None,
    )
    await ctx.conn.execute(
        "INSERT INTO deliveries (user_login, kind, job_id) VALUES ($1, $2, $3)",
        login,
        kind,
        job_id,
    )
    ctx.log.info("desktop message queued", user=login, kind=kind)


async def on_user_added(ctx: HandlerContext, event: UserAdded) -> None:
    await ctx.publisher.ensure_desktop_queue(event.login)
    await identities.on_user_added(ctx, event)


async def on_job_charged(ctx: HandlerContext, event: JobCharged) -> None:
    notice = PrintedNotice(
        job_id=event.job_id,
        document_name=event.document_name,
        printer=event.printer,
        pages=event.pages,
        copies=event.copies,
        cost=event.amount,
        balance=event.balance,
    )
    await _send(ctx, event.user, notice, event.job_id)


async def on_job_denied(ctx: HandlerContext, event: JobDenied) -> None:
    notice = DeniedNotice(
        job_id=event.job_id,
        document_name=event.document_name,
        printer=event.printer,
        reason=event.reason,
    )
    await _send(ctx, event.user, notice, event.job_id)


async def on_balance_low(ctx: HandlerContext, event: BalanceLow) -> None:
    await _send(
        ctx,
        event.owner,
        LowBalanceNotice(
            balance=event.balance, available=event.available, threshold=event.threshold
        ),
    )


async def on_balance_changed(ctx: HandlerContext, event: BalanceChanged) -> None:
    if event.owner is None:
        return  # shared and system accounts have no single desktop to tell
    await _send(ctx, event.owner, BalanceNotice(balance=event.balance, available=event.available))
