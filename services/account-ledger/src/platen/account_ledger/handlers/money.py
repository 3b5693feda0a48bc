"""Money in and out: top-ups, adjustments, refunds, transfers.

Each command carries the caller's key; the operation's transaction is stored under a key
derived from it, so the same command twice (or a retry with a new message id) posts once
and answers with the same transaction.
"""

from __future__ import annotations

from decimal import Decimal

from platen.account_ledger import domain
from platen.account_ledger.domain import NotFound, Posting
from platen.account_ledger.handlers.common import balance_changed, not_cents
from platen.account_ledger.subscriptions import subscribe
from platen.events.accounts import (
    Adjust,
    EntryView,
    Refund,
    TopUp,
    TransactionView,
    Transfer,
)
from platen.events.system import ErrorReply
from platen.messaging.handling import HandlerContext
from platen.messaging.senders import ADMIN


async def _view(ctx: HandlerContext, tx_id: int) -> TransactionView:
    tx, entries = await ctx.store.transaction(tx_id)
    return TransactionView(
        id=tx["id"],
        op_key=tx["op_key"],
        kind=tx["kind"],
        description=tx["description"],
        job_id=tx["job_id"],
        created_by=tx["created_by"],
        created_at=tx["created_at"],
        entries=[
            EntryView(account=e["account_id"], amount=e["amount"], balance_after=e["balance_after"])
            for e in entries
        ],
    )


async def _post(
    ctx: HandlerContext,
    *,
    op_key: str,
    kind: str,
    description: str,
    entries: dict[str, Decimal],
    by: str,
    job_id=None,
) -> TransactionView:
    tx_id = await ctx.store.post(
        Posting(
            op_key=op_key,
            kind=kind,
            description=description,
            entries=entries,
            created_by=by,
            job_id=job_id,
        )
    )
    if tx_id is None:  # the same key again: answer with what it did the first time
        return await _view(ctx, await ctx.store.transaction_by_key(op_key))
    ctx.log.info("money moved", kind=kind, op_key=op_key, by=by)
    for account_id in entries:
        if not account_id.startswith("system:"):
            await balance_changed(ctx, account_id)
    return await _view(ctx, tx_id)


async def _refusal_to_pay_in(ctx: HandlerContext, account_id: str) -> ErrorReply | None:
    """An error when `account_id` is a deleted user's (see `domain.closed_to_money_in`).
    The owner's row is shared first, as a held job shares it: a delete that runs at the
    same time (it locks the row, then checks the balance is 0) either comes first, and is
    seen here, or waits for this payment and then finds money left and refuses."""
    account = await ctx.store.account(account_id)
    if account is None or account.owner is None:
        return None
    await ctx.store.share_user(account.owner)
    reason = domain.closed_to_money_in(account_id, await ctx.store.user(account.owner))
    return ErrorReply(error=reason) if reason else None


async def _from_outside(
    ctx: HandlerContext, cmd: TopUp | Adjust, op_key: str, kind: str
) -> TransactionView | ErrorReply:
    """Money entering (or, negative, leaving) the ledger through `system:funding`."""
    if refusal := not_cents(cmd.amount):
        return refusal
    try:
        account_id = await ctx.store.resolve(cmd.account)
    except NotFound as exc:
        return ErrorReply(error=str(exc))
    if await ctx.store.transaction_by_key(op_key) is not None:
        pass  # the same key again: `_post` answers with what it did the first time
    elif cmd.amount > 0:
        if refusal := await _refusal_to_pay_in(ctx, account_id):
            return refusal
    else:
        # Money taken out stops at a restricted account's floor, as a transfer does (the
        # database refuses it too; this says why instead of failing the delivery).
        await ctx.store.lock_accounts([account_id])
        decision = (await ctx.store.account(account_id)).can_pay(-cmd.amount)
        if not decision.authorized:
            return ErrorReply(error=f"{account_id} cannot pay {-cmd.amount}: {decision.reason}")
    return await _post(
        ctx,
        op_key=op_key,
        kind=kind,
        description=cmd.reason,
        entries={account_id: cmd.amount, domain.FUNDING: -cmd.amount},
        by=cmd.by,
    )


@subscribe.command(TopUp, senders=ADMIN)
async def on_topup(ctx: HandlerContext, cmd: TopUp) -> TransactionView | ErrorReply:
    return await _from_outside(ctx, cmd, f"topup:{cmd.key}", "top-up")


@subscribe.command(Adjust, senders=ADMIN)
async def on_adjust(ctx: HandlerContext, cmd: Adjust) -> TransactionView | ErrorReply:
    if cmd.amount == 0:
        return ErrorReply(error="an adjustment of 0 changes nothing")
    return await _from_outside(ctx, cmd, f"adjust:{cmd.key}", "adjustment")


@subscribe.command(Transfer, senders=ADMIN)
async def on_transfer(ctx: HandlerContext, cmd: Transfer) -> TransactionView | ErrorReply:
    if refusal := not_cents(cmd.amount):
        return refusal
    try:
        source = await ctx.store.resolve(cmd.from_account)
        target = await ctx.store.resolve(cmd.to_account)
    except NotFound as exc:
        return ErrorReply(error=str(exc))
    if source == target:
        return ErrorReply(error="a transfer needs two different accounts")
    op_key = f"transfer:{cmd.key}"
    if await ctx.store.transaction_by_key(op_key) is None:
        if refusal := await _refusal_to_pay_in(ctx, target):
            return refusal
        await ctx.store.lock_accounts([source, target])
        decision = (await ctx.store.account(source)).can_pay(cmd.amount)
        if not decision.authorized:
            return ErrorReply(error=f"{source} cannot pay {cmd.amount}: {decision.reason}")
    return await _post(
        ctx,
        op_key=op_key,
        kind="transfer",
        description=cmd.reason,
        entries={source: -cmd.amount, target: cmd.amount},
        by=cmd.by,
    )


@subscribe.command(Refund, senders=ADMIN)
async def on_refund(ctx: HandlerContext, cmd: Refund) -> TransactionView | ErrorReply:
    if refusal := not_cents(cmd.amount):
        return refusal
    op_key = f"refund:{cmd.key}"
    if (tx_id := await ctx.store.transaction_by_key(op_key)) is not None:
        return await _view(ctx, tx_id)
    # The refund reverses the charge: back to the account that paid, out of the revenue
    # account the charge credited (before migration 004, `system:revenue`).
    charge = await ctx.store.job_charge(cmd.job_id)
    if charge is None:
        return ErrorReply(error=f"job {cmd.job_id} was not charged; there is nothing to refund")
    # Refunds of one job are taken one at a time (the paying account's row lock), so two
    # refunds at once cannot together return more than was charged.
    await ctx.store.lock_accounts([charge["account_id"], charge["revenue"]])
    refunded = await ctx.store.refunded(cmd.job_id, charge["account_id"])
    try:
        amount = domain.refundable(charge["amount"], refunded, cmd.amount)
    except ValueError as exc:
        return ErrorReply(error=str(exc))
    return await _post(
        ctx,
        op_key=op_key,
        kind="refund",
        description=cmd.reason,
        entries={charge["account_id"]: amount, charge["revenue"]: -amount},
        by=cmd.by,
        job_id=cmd.job_id,
    )
