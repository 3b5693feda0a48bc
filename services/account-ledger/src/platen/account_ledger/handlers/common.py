"""Pieces shared by the ledger's handlers: views and what follows a balance change."""

from __future__ import annotations

import re
from decimal import Decimal

from platen.account_ledger import domain
from platen.account_ledger.domain import NotFound
from platen.events.accounts import (
    EMAIL_PATTERN,
    AccountView,
    BalanceChanged,
    BalanceLow,
    HoldView,
    UserAdded,
    UserContactSet,
    UserGroupsSet,
    UserView,
)
from platen.events.money import CENT
from platen.events.system import ErrorReply
from platen.messaging.handling import HandlerContext
from platen.messaging.settings import setting

SERVICE = "account-ledger"


default_low_balance = setting("PLATEN_LOW_BALANCE_THRESHOLD", Decimal, "1.00")


def not_cents(amount: Decimal | None, what: str = "amount") -> ErrorReply | None:
    """Balances are kept in cents (NUMERIC(14, 2), which would round silently): an amount
    with more decimals is refused, not rounded."""
    # Decimal(): a message's default (e.g. AddUser's initial_balance 0) is not validated,
    # so it may still be an int.
    if amount is not None and Decimal(amount) != Decimal(amount).quantize(CENT):
        return ErrorReply(error=f"{what} {amount} has more than two decimals; amounts are in cents")
    return None


async def user_view(ctx: HandlerContext, login: str) -> UserView | None:
    user = await ctx.store.user(login)
    if user is None:
        return None
    acc = await ctx.store.account(user.personal_account)
    holds = await ctx.store.pending_holds(acc.id)
    return UserView(
        login=login,
        restricted=acc.restricted,
        overdraft_limit=acc.overdraft_limit,
        account=acc.id,
        balance=acc.balance,
        held=acc.held,
        available=acc.available,
        account_selection=user.account_selection,
        default_account=user.default_account,
        low_balance_threshold=user.low_balance_threshold,
        groups=user.groups,
        enabled=user.enabled,
        email=user.email,
        email_notices=user.email_notices,
        holds=[
            HoldView(
                job_id=h.job_id,
                account=h.account_id,
                amount=h.amount,
                printer=h.printer,
                document_name=h.document_name,
                created_at=h.created_at,
            )
            for h in holds
        ],
    )


async def account_view(ctx: HandlerContext, account_id: str) -> AccountView:
    acc = await ctx.store.account(account_id)
    if acc is None:
        raise NotFound(f"no account {account_id!r}")
    access = sorted(acc.grants, key=lambda grant: grant[1])
    return AccountView(
        id=acc.id,
        kind=acc.kind,
        path=acc.name,
        owner=acc.owner,
        parent=acc.parent,
        balance=acc.balance,
        held=acc.held,
        available=acc.available,
        restricted=acc.restricted,
        overdraft_limit=acc.overdraft_limit,
        charge_rate=acc.charge_rate,
        effective_charge_rate=acc.effective_charge_rate,
        has_pin=acc.pin_hash is not None,
        enabled=acc.enabled,
        users=[who for kind, who in access if kind == "user"],
        groups=[who for kind, who in access if kind == "group"],
        code=acc.code,
        balance_visible=acc.balance_visible,
    )


async def balance_changed(
    ctx: HandlerContext, account_id: str, acc: domain.Account | None = None
) -> None:
    """Publish the new balance; for a personal account, warn once when it runs low.
    `acc`: the account as it is now, when the caller has just read it.

    In a batch, the balance is published once per account, at the batch's end, with the
    figures the batch leaves (`emit_latest`): its consumers (a desktop's balance) need the
    latest, not every step, and each job's charge event carries its own balance. The
    low-balance warning is still decided job by job, at each crossing."""
    if acc is None:
        acc = await ctx.store.account(account_id)
    owner = acc.owner

    async def latest() -> BalanceChanged:
        now = await ctx.store.account(account_id)
        return BalanceChanged(
            account=account_id, owner=owner, balance=now.balance, available=now.available
        )

    await ctx.emit_latest(
        f"account.balance_changed:{account_id}", latest, correlation_id=account_id
    )
    if owner is None:
        return
    user = await ctx.store.user(owner)
    threshold = user.low_balance_threshold
    if threshold is None:
        threshold = default_low_balance()
    warn, armed = domain.low_balance_transition(
        armed=acc.low_balance_armed, available=acc.available, threshold=threshold
    )
    if armed != acc.low_balance_armed:
        await ctx.store.set_low_balance_armed(account_id, armed)
    if warn:
        ctx.log.info("balance low", account=account_id, available=str(acc.available))
        await ctx.emit(
            BalanceLow(
                account=account_id,
                owner=owner,
                balance=acc.balance,
                available=acc.available,
                threshold=threshold,
            ),
            correlation_id=account_id,
        )


async def create_user(
    ctx: HandlerContext,
    login: str,
    *,
    initial_balance: Decimal,
    restricted: bool,
    groups: list[str],
    overdraft_limit: Decimal = Decimal(0),
) -> bool:
    """Make a user and their personal account, with a starting balance from
    `system:funding`, and announce them (the notification service gives them a desktop
    identity); False, changing nothing, when they exist already."""
    if not await ctx.store.add_user(login, restricted=restricted):
        return False
    account = domain.personal_account(login)
    revision = await ctx.store.set_groups(login, groups)
    if overdraft_limit:
        await ctx.store.update_account(account, overdraft_limit=overdraft_limit)
    if initial_balance > 0:
        await ctx.store.post(
            domain.Posting(
                op_key=f"user:{login}:initial-balance",
                kind="top-up",
                description="initial balance",
                entries={account: initial_balance, domain.FUNDING: -initial_balance},
            )
        )
    ctx.log.info("user added", login=login, balance=str(initial_balance))
    await ctx.emit(UserAdded(login=login), correlation_id=account)
    await ctx.emit(
        UserGroupsSet(login=login, groups=groups, revision=revision), correlation_id=account
    )
    await balance_changed(ctx, account)
    return True


async def announce_contact(ctx: HandlerContext, login: str) -> None:
    """Tell the notification service how `login` is reached by email now (it keeps no
    copy of the ledger's tables). An address the directory gave that no mail server would
    take (a line break, no "@") is announced as none, with a warning."""
    email, email_notices, revision = await ctx.store.next_contact(login)
    if email is not None and not re.fullmatch(EMAIL_PATTERN, email):
        ctx.log.warning("email address not usable; no mail for this user", login=login)
        email = None
    await ctx.emit(
        UserContactSet(login=login, email=email, email_notices=email_notices, revision=revision),
        correlation_id=domain.personal_account(login),
    )
