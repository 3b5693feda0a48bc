"""Periodic quotas: setting them, and giving a group's period to its members.

A period is given once per group: `give` claims it in the store first (a second run,
from a retry, a second trigger or another replica, finds it claimed and does nothing),
and each member's posting has its own key besides. Runs come from `platenctl quota run`
and from the ledger's own schedule (quota_schedule.py), both through `give`.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from platen.account_ledger import domain
from platen.account_ledger.domain import Period, Posting, Quota
from platen.account_ledger.handlers.common import balance_changed, not_cents
from platen.account_ledger.subscriptions import subscribe
from platen.events.quotas import (
    ListQuotas,
    QuotaList,
    QuotaRunView,
    QuotaSaved,
    QuotasRun,
    QuotaView,
    RemoveQuota,
    RunQuotas,
    SetQuota,
)
from platen.events.system import ErrorReply
from platen.messaging.handling import HandlerContext
from platen.messaging.senders import ADMIN


async def give(ctx: HandlerContext, quota: Quota, day: date) -> QuotaRunView | None:
    """Give `quota`'s period that `day` falls in to the group's enabled members; None when
    `day` is in no period (before the first term)."""
    period = quota.period_of(day)
    if period is None:
        return None
    if not await ctx.store.claim_quota_period(quota.group, period):
        return QuotaRunView(group=quota.group, period=period, given=False)
    users, total = 0, Decimal(0)
    for login in await ctx.store.enabled_members(quota.group):
        account_id = domain.personal_account(login)
        await ctx.store.lock_accounts([account_id])  # the balance read is the one changed
        account = await ctx.store.account(account_id)
        credit = quota.credit(account)
        if credit == 0:
            continue  # at its cap already: nothing to post
        posted = await ctx.store.post(
            Posting(
                op_key=quota.op_key(period, login),
                kind="quota",
                description=quota.description(period),
                entries={account_id: credit, domain.FUNDING: -credit},
                created_by="quota",
            )
        )
        if posted is not None:
            users, total = users + 1, total + credit
            await balance_changed(ctx, account_id)
    await ctx.store.record_quota_run(quota.group, period, users, total)
    ctx.log.info("quota given", group=quota.group, period=period, users=users, total=str(total))
    return QuotaRunView(group=quota.group, period=period, given=True, users=users, total=total)


@subscribe.command(SetQuota, senders=ADMIN)
async def on_set_quota(ctx: HandlerContext, cmd: SetQuota) -> QuotaSaved | ErrorReply:
    for what, value in [("amount", cmd.amount), ("cap", cmd.cap)]:
        if refusal := not_cents(value, what):
            return refusal
    quota = Quota(
        group=cmd.group,
        amount=cmd.amount,
        period=Period(cmd.period),
        cap=cmd.cap,
        reset=cmd.reset,
        terms=tuple(sorted(set(cmd.terms))),
    )
    await ctx.store.set_quota(quota)
    ctx.log.info("quota set", group=quota.group, amount=str(quota.amount), period=quota.period)
    [(saved, last)] = await ctx.store.quotas(quota.group)
    return QuotaSaved(quota=_view(saved, last))


@subscribe.command(RemoveQuota, senders=ADMIN)
async def on_remove_quota(ctx: HandlerContext, cmd: RemoveQuota) -> QuotaList | ErrorReply:
    if not await ctx.store.remove_quota(cmd.group):
        return ErrorReply(error=f"group {cmd.group!r} has no quota")
    ctx.log.info("quota removed", group=cmd.group)
    return QuotaList(quotas=[_view(q, last) for q, last in await ctx.store.quotas()])


@subscribe.query(ListQuotas, senders=ADMIN)
async def on_list_quotas(ctx: HandlerContext, query: ListQuotas) -> QuotaList:
    return QuotaList(quotas=[_view(q, last) for q, last in await ctx.store.quotas()])


@subscribe.command(RunQuotas, senders=ADMIN)
async def on_run_quotas(ctx: HandlerContext, cmd: RunQuotas) -> QuotasRun | ErrorReply:
    quotas = await ctx.store.quotas(cmd.group)
    if cmd.group is not None and not quotas:
        return ErrorReply(error=f"group {cmd.group!r} has no quota")
    day = cmd.day or date.today()
    runs = [run for q, _ in quotas if (run := await give(ctx, q, day)) is not None]
    return QuotasRun(runs=runs)


def _view(quota: Quota, last) -> QuotaView:
    return QuotaView(
        group=quota.group,
        amount=quota.amount,
        period=str(quota.period),
        cap=quota.cap,
        reset=quota.reset,
        terms=list(quota.terms),
        last_period=last["last_period"] if last else None,
        last_run_at=last["last_run_at"] if last else None,
    )
