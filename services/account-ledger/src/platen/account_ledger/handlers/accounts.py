"""Shared accounts: creation, settings, access."""

from __future__ import annotations

from platen.account_ledger import domain
from platen.account_ledger.domain import Account, NotFound
from platen.account_ledger.handlers.common import account_view, not_cents
from platen.account_ledger.subscriptions import subscribe
from platen.events.accounts import (
    AccountList,
    AccountView,
    AddAccount,
    GrantAccess,
    ListAccounts,
    RevokeAccess,
    SetAccount,
    ShowAccount,
)
from platen.events.system import ErrorReply
from platen.messaging.handling import HandlerContext
from platen.messaging.senders import ADMIN


async def _code_taken(ctx: HandlerContext, code: str | None, account_id: str) -> ErrorReply | None:
    """A code names one account: refused when another has it already (any case)."""
    if code is None:
        return None
    owner = await ctx.store.account_with_code(code)
    if owner is not None and owner != account_id:
        return ErrorReply(error=f"code {code!r} is already used by {owner}")
    return None


async def _shared(ctx: HandlerContext, ref: str) -> str:
    account_id = await ctx.store.resolve(ref)
    if not account_id.startswith("shared:"):
        raise NotFound(f"{ref!r} is not a shared account")
    return account_id


@subscribe.command(AddAccount, senders=ADMIN)
async def on_add_account(ctx: HandlerContext, cmd: AddAccount) -> AccountView | ErrorReply:
    if refusal := not_cents(cmd.overdraft_limit, "overdraft limit"):
        return refusal
    if cmd.pin and (weakness := domain.pin_weakness(cmd.pin)):
        return ErrorReply(error=weakness)
    path = cmd.name
    parent = None
    if cmd.parent:
        try:
            parent = await _shared(ctx, cmd.parent)
        except NotFound as exc:
            return ErrorReply(error=str(exc))
        path = f"{parent.removeprefix('shared:')}/{cmd.name}"
    account_id = domain.shared_account(path)
    if refusal := await _code_taken(ctx, cmd.code, account_id):
        return refusal
    created = await ctx.store.add_shared_account(
        Account(
            id=account_id,
            kind="shared",
            name=path,
            parent=parent,
            restricted=cmd.restricted,
            overdraft_limit=cmd.overdraft_limit,
            charge_rate=cmd.charge_rate,
            pin_hash=domain.hash_pin(cmd.pin) if cmd.pin else None,
            enabled=cmd.enabled,
            code=cmd.code,
            balance_visible=cmd.balance_visible,
        )
    )
    if created:
        ctx.log.info("shared account added", account=account_id)
    return await account_view(ctx, account_id)


@subscribe.command(SetAccount, senders=ADMIN)
async def on_set_account(ctx: HandlerContext, cmd: SetAccount) -> AccountView | ErrorReply:
    if refusal := not_cents(cmd.overdraft_limit, "overdraft limit"):
        return refusal
    if cmd.pin and (weakness := domain.pin_weakness(cmd.pin)):
        return ErrorReply(error=weakness)
    try:
        account_id = await _shared(ctx, cmd.account)
    except NotFound as exc:
        return ErrorReply(error=str(exc))
    if cmd.code and cmd.clear_code:
        return ErrorReply(error="give a code or clear it, not both")
    if refusal := await _code_taken(ctx, cmd.code, account_id):
        return refusal
    changes = {
        "restricted": cmd.restricted,
        "overdraft_limit": cmd.overdraft_limit,
        "charge_rate": cmd.charge_rate,
        "enabled": cmd.enabled,
        "code": cmd.code,
        "balance_visible": cmd.balance_visible,
    }
    settings = {column: value for column, value in changes.items() if value is not None}
    if cmd.pin or cmd.clear_pin:
        settings["pin_hash"] = domain.hash_pin(cmd.pin) if cmd.pin else None
    if cmd.clear_code:
        settings["code"] = None
    await ctx.store.update_account(account_id, **settings)
    ctx.log.info("shared account changed", account=account_id)
    return await account_view(ctx, account_id)


async def _change_access(
    ctx: HandlerContext, cmd: GrantAccess | RevokeAccess, *, grant: bool
) -> AccountView | ErrorReply:
    try:
        account_id = await _shared(ctx, cmd.account)
    except NotFound as exc:
        return ErrorReply(error=str(exc))
    principals = [("user", u) for u in cmd.users] + [("group", g) for g in cmd.groups]
    change = ctx.store.grant if grant else ctx.store.revoke
    await change(account_id, principals)
    return await account_view(ctx, account_id)


@subscribe.command(GrantAccess, senders=ADMIN)
async def on_grant(ctx: HandlerContext, cmd: GrantAccess) -> AccountView | ErrorReply:
    return await _change_access(ctx, cmd, grant=True)


@subscribe.command(RevokeAccess, senders=ADMIN)
async def on_revoke(ctx: HandlerContext, cmd: RevokeAccess) -> AccountView | ErrorReply:
    return await _change_access(ctx, cmd, grant=False)


@subscribe.query(ShowAccount, senders=ADMIN)
async def on_show_account(ctx: HandlerContext, query: ShowAccount) -> AccountView | ErrorReply:
    try:
        return await account_view(ctx, await ctx.store.resolve(query.account))
    except NotFound as exc:
        return ErrorReply(error=str(exc))


@subscribe.query(ListAccounts, senders=ADMIN)
async def on_list_accounts(ctx: HandlerContext, query: ListAccounts) -> AccountList:
    ids = await ctx.store.account_ids(query.kind)
    return AccountList(accounts=[await account_view(ctx, account_id) for account_id in ids])
