"""Shared accounts: creation, settings, access."""

from __future__ import annotations

from platen.account_ledger import rules, store
from platen.account_ledger.handlers.common import account_view, not_cents
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


async def _shared(ctx: HandlerContext, ref: str) -> str:
    account_id = await store.resolve(ctx.conn, ref)
    if not account_id.startswith("shared:"):
        raise store.NotFound(f"{ref!r} is not a shared account")
    return account_id


async def on_add_account(ctx: HandlerContext, cmd: AddAccount) -> AccountView | ErrorReply:
    if refusal := not_cents(cmd.overdraft_limit, "overdraft limit"):
        return refusal
    path = cmd.name
    parent = None
    if cmd.parent:
        try:
            parent = await _shared(ctx, cmd.parent)
        except store.NotFound as exc:
            return ErrorReply(error=str(exc))
        path = f"{parent.removeprefix('shared:')}/{cmd.name}"
    account_id = rules.shared_account(path)
    created = await ctx.conn.fetchval(
        """INSERT INTO accounts (id, kind, name, parent_id, restricted, overdraft_limit,
                                 charge_rate, pin_hash, enabled)
           VALUES ($1, 'shared', $2, $3, $4, $5, $6, $7, $8)
           ON CONFLICT (id) DO NOTHING RETURNING true""",
        account_id,
        path,
        parent,
        cmd.restricted,
        cmd.overdraft_limit,
        cmd.charge_rate,
        rules.hash_pin(cmd.pin) if cmd.pin else None,
        cmd.enabled,
    )
    if created:
        ctx.log.info("shared account added", account=account_id)
    return await account_view(ctx, account_id)


async def on_set_account(ctx: HandlerContext, cmd: SetAccount) -> AccountView | ErrorReply:
    if refusal := not_cents(cmd.overdraft_limit, "overdraft limit"):
        return refusal
    try:
        account_id = await _shared(ctx, cmd.account)
    except store.NotFound as exc:
        return ErrorReply(error=str(exc))
    changes = {
        "restricted": cmd.restricted,
        "overdraft_limit": cmd.overdraft_limit,
        "charge_rate": cmd.charge_rate,
        "enabled": cmd.enabled,
    }
    for column, value in changes.items():
        if value is not None:
            await ctx.conn.execute(
                f"UPDATE accounts SET {column} = $2 WHERE id = $1", account_id, value
            )
    if cmd.pin or cmd.clear_pin:
        await ctx.conn.execute(
            "UPDATE accounts SET pin_hash = $2 WHERE id = $1",
            account_id,
            rules.hash_pin(cmd.pin) if cmd.pin else None,
        )
    ctx.log.info("shared account changed", account=account_id)
    return await account_view(ctx, account_id)


async def _change_access(
    ctx: HandlerContext, cmd: GrantAccess | RevokeAccess, sql: str
) -> AccountView | ErrorReply:
    try:
        account_id = await _shared(ctx, cmd.account)
    except store.NotFound as exc:
        return ErrorReply(error=str(exc))
    rows = [(account_id, "user", u) for u in cmd.users]
    rows += [(account_id, "group", g) for g in cmd.groups]
    await ctx.conn.executemany(sql, rows)
    return await account_view(ctx, account_id)


async def on_grant(ctx: HandlerContext, cmd: GrantAccess) -> AccountView | ErrorReply:
    return await _change_access(
        ctx, cmd, "INSERT INTO account_access VALUES ($1, $2, $3) ON CONFLICT DO NOTHING"
    )


async def on_revoke(ctx: HandlerContext, cmd: RevokeAccess) -> AccountView | ErrorReply:
    return await _change_access(
        ctx,
        cmd,
        "DELETE FROM account_access WHERE account_id = $1 AND principal_kind = $2 "
        "AND principal = $3",
    )


async def on_show_account(ctx: HandlerContext, query: ShowAccount) -> AccountView | ErrorReply:
    try:
        return await account_view(ctx, await store.resolve(ctx.conn, query.account))
    except store.NotFound as exc:
        return ErrorReply(error=str(exc))


async def on_list_accounts(ctx: HandlerContext, query: ListAccounts) -> AccountList:
    rows = await ctx.conn.fetch(
        "SELECT id FROM accounts WHERE $1::text IS NULL OR kind = $1 ORDER BY kind, name",
        query.kind,
    )
    return AccountList(accounts=[await account_view(ctx, r["id"]) for r in rows])
