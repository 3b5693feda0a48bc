"""Turn domain events into messages for one user's desktop."""

from __future__ import annotations

from platen.events.accounts import BalanceChanged, BalanceLow, JobCharged
from platen.events.desktop import (
    BalanceNotice,
    DeniedNotice,
    LowBalanceNotice,
    PrintedNotice,
)
from platen.events.jobs import JobDenied
from platen.messaging.handling import HandlerContext
from platen.notification.notices import tell
from platen.notification.prompts import close_denied
from platen.notification.sending import send
from platen.notification.subscriptions import subscribe


@subscribe.event(JobCharged)
async def on_job_charged(ctx: HandlerContext, event: JobCharged) -> None:
    notice = PrintedNotice(
        job_id=event.job_id,
        document_name=event.document_name,
        printer=event.printer,
        sides=event.sides,
        copies=event.copies,
        cost=event.amount,
        balance=event.balance,
    )
    await send(ctx, event.user, notice, event.job_id)


@subscribe.event(JobDenied)
async def on_job_denied(ctx: HandlerContext, event: JobDenied) -> None:
    notice = DeniedNotice(
        job_id=event.job_id,
        document_name=event.document_name,
        printer=event.printer,
        reason=event.reason,
    )
    values = {"document": event.document_name, "printer": event.printer, "reason": event.reason}
    await tell(ctx, "denied", event.user, values, notice, event.job_id)
    await close_denied(ctx, event)


@subscribe.event(BalanceLow)
async def on_balance_low(ctx: HandlerContext, event: BalanceLow) -> None:
    notice = LowBalanceNotice(
        balance=event.balance, available=event.available, threshold=event.threshold
    )
    values = {"balance": event.balance, "available": event.available, "threshold": event.threshold}
    await tell(ctx, "low-balance", event.owner, values, notice)


@subscribe.event(BalanceChanged)
async def on_balance_changed(ctx: HandlerContext, event: BalanceChanged) -> None:
    if event.owner is None:
        return  # shared and system accounts have no single desktop to tell
    await send(ctx, event.owner, BalanceNotice(balance=event.balance, available=event.available))
