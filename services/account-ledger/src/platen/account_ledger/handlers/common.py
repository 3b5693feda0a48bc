"""Pieces shared by the ledger's handlers: views and what follows a balance change."""

from __future__ import annotations

import os
from decimal import Decimal

from platen.account_ledger import rules, store
from platen.events.accounts import AccountView, BalanceChanged, BalanceLow, HoldView, UserView
from platen.events.money import CENT
from platen.events.system import ErrorReply
from platen.messaging.handling import HandlerContext

SERVICE = "account-ledger"
DEFAULT_LOW_BALANCE = Decimal(os.environ.get("PLATEN_LOW_BALANCE_THRESHOLD", "1.00"))


def not_cents(amount: Decimal | None, what: str = "amount") -> ErrorReply | None:
    """Balances are kept in cents (NUMERIC(14, 2), which would round silently): an amount
    with more decimals is refused, not rounded."""
    # Decimal(): a message's default (e.g. AddUser's initial_balance 0) is not validated,
    # so it may still be an int.
    if amount is not None and Decimal(amount) != Decimal(amount).quantize(CENT):
        return ErrorReply(error=f"{what} {amount} has more than two decimals; amounts are in cents")
    return None


async def user_view(ctx: HandlerContext, login: str) -> UserView | None:
    user = await store.user(ctx.conn, login)
    if user is None:
        return None
    account_id = rules.personal_account(login)
    acc = await store.account(ctx.conn, account_id)
    on_hold = await store.held(ctx.conn, account_id)
    holds = await store.pending_holds(ctx.conn, [account_id])
    return UserView(
        login=login,
        restricted=acc["restricted"],
        overdraft_limit=acc["overdraft_limit"],
        account=account_id,
        balance=acc["balance"],
        held=on_hold,
        available=acc["balance"] - on_hold,
        account_selection=user["account_selection"],
        default_account=user["default_account"],
        low_balance_threshold=user["low_balance_threshold"],
        groups=await store.user_groups(ctx.conn, login),
        enabled=user["enabled"],
        holds=[
            HoldView(
                job_id=h["job_id"],
                account=h["account_id"],
                amount=h["amount"],
                printer=h["printer"],
                document_name=h["document_name"],
                created_at=h["created_at"],
            )
            for h in holds
        ],
    )


async def account_view(ctx: HandlerContext, account_id: str) -> AccountView:
    acc = await store.account(ctx.conn, account_id)
    if acc is None:
        raise store.NotFound(f"no account {account_id!r}")
    on_hold = await store.held(ctx.conn, account_id)
    access = await ctx.conn.fetch(
        "SELECT principal_kind, principal FROM account_access WHERE account_id = $1 "
        "ORDER BY principal",
        account_id,
    )
    return AccountView(
        id=acc["id"],
        kind=acc["kind"],
        path=acc["name"],
        owner=acc["owner_login"],
        parent=acc["parent_id"],
        balance=acc["balance"],
        held=on_hold,
        available=acc["balance"] - on_hold,
        restricted=acc["restricted"],
        overdraft_limit=acc["overdraft_limit"],
        charge_rate=acc["charge_rate"],
        effective_charge_rate=await store.effective_charge_rate(ctx.conn, account_id),
        has_pin=acc["pin_hash"] is not None,
        enabled=acc["enabled"],
        users=[a["principal"] for a in access if a["principal_kind"] == "user"],
        groups=[a["principal"] for a in access if a["principal_kind"] == "group"],
    )


async def balance_changed(ctx: HandlerContext, account_id: str) -> None:
    """Publish the new balance; for a personal account, warn once when it runs low."""
    acc = await store.account(ctx.conn, account_id)
    available = acc["balance"] - await store.held(ctx.conn, account_id)
    owner = acc["owner_login"]
    await ctx.emit(
        BalanceChanged(
            account=account_id, owner=owner, balance=acc["balance"], available=available
        ),
        correlation_id=account_id,
    )
    if owner is None:
        return
    user = await store.user(ctx.conn, owner)
    threshold = user["low_balance_threshold"]
    if threshold is None:
        threshold = DEFAULT_LOW_BALANCE
    warn, armed = rules.low_balance_transition(
        armed=acc["low_balance_armed"], available=available, threshold=threshold
    )
    if armed != acc["low_balance_armed"]:
        await ctx.conn.execute(
            "UPDATE accounts SET low_balance_armed = $2 WHERE id = $1", account_id, armed
        )
    if warn:
        ctx.log.info("balance low", account=account_id, available=str(available))
        await ctx.emit(
            BalanceLow(
                account=account_id,
                owner=owner,
                balance=acc["balance"],
                available=available,
                threshold=threshold,
            ),
            correlation_id=account_id,
        )
