"""Users: creation, settings, lookup."""

from __future__ import annotations

from platen.account_ledger import rules, store
from platen.account_ledger.handlers.common import balance_changed, not_cents, user_view
from platen.events.accounts import (
    AddUser,
    SetUser,
    ShowUser,
    UserAdded,
    UserDisabled,
    UserEnabled,
    UserGroupsSet,
    UserView,
)
from platen.events.system import ErrorReply
from platen.messaging.handling import HandlerContext


async def on_add_user(ctx: HandlerContext, cmd: AddUser) -> UserView | ErrorReply:
    if refusal := not_cents(cmd.initial_balance, "starting balance"):
        return refusal
    created = await ctx.conn.fetchval(
        "INSERT INTO users (login) VALUES ($1) ON CONFLICT DO NOTHING RETURNING true",
        cmd.login,
    )
    if created:
        account = rules.personal_account(cmd.login)
        await ctx.conn.execute(
            "INSERT INTO accounts (id, kind, name, owner_login, restricted) "
            "VALUES ($1, 'personal', $2, $2, $3)",
            account,
            cmd.login,
            cmd.restricted,
        )
        await store.set_groups(ctx.conn, cmd.login, cmd.groups)
        if cmd.initial_balance > 0:
            await store.post(
                ctx.conn,
                op_key=f"user:{cmd.login}:initial-balance",
                kind="top-up",
                description="initial balance",
                entries={account: cmd.initial_balance, rules.FUNDING: -cmd.initial_balance},
            )
        ctx.log.info("user added", login=cmd.login, balance=str(cmd.initial_balance))
        await ctx.emit(UserAdded(login=cmd.login), correlation_id=account)
        await ctx.emit(UserGroupsSet(login=cmd.login, groups=cmd.groups), correlation_id=account)
        await balance_changed(ctx, account)
    view = await user_view(ctx, cmd.login)
    assert view is not None
    return view


async def on_set_user(ctx: HandlerContext, cmd: SetUser) -> UserView | ErrorReply:
    if await store.user(ctx.conn, cmd.login) is None:
        return ErrorReply(error=f"no user named {cmd.login!r}")
    for what, value in [
        ("overdraft limit", cmd.overdraft_limit),
        ("low-balance threshold", cmd.low_balance_threshold),
    ]:
        if refusal := not_cents(value, what):
            return refusal
    account = rules.personal_account(cmd.login)
    if cmd.restricted is not None:
        await ctx.conn.execute(
            "UPDATE accounts SET restricted = $2 WHERE id = $1", account, cmd.restricted
        )
    if cmd.overdraft_limit is not None:
        await ctx.conn.execute(
            "UPDATE accounts SET overdraft_limit = $2 WHERE id = $1", account, cmd.overdraft_limit
        )
    if cmd.account_selection is not None:
        await ctx.conn.execute(
            "UPDATE users SET account_selection = $2 WHERE login = $1",
            cmd.login,
            cmd.account_selection,
        )
    if cmd.default_account is not None:
        try:
            default = await store.resolve(ctx.conn, cmd.default_account)
        except store.NotFound as exc:
            return ErrorReply(error=str(exc))
        if default == account:
            default = None
        elif not await store.may_use(ctx.conn, cmd.login, default):
            return ErrorReply(error=f"{cmd.login} may not use {default}")
        await ctx.conn.execute(
            "UPDATE users SET default_account = $2 WHERE login = $1", cmd.login, default
        )
    if cmd.low_balance_threshold is not None:
        await ctx.conn.execute(
            "UPDATE users SET low_balance_threshold = $2 WHERE login = $1",
            cmd.login,
            cmd.low_balance_threshold,
        )
    if cmd.groups is not None:
        await store.set_groups(ctx.conn, cmd.login, cmd.groups)
        await ctx.emit(UserGroupsSet(login=cmd.login, groups=cmd.groups), correlation_id=account)
    if cmd.enabled is not None:
        await _set_enabled(ctx, cmd.login, cmd.enabled)
    ctx.log.info("user changed", login=cmd.login)
    return await user_view(ctx, cmd.login)


async def _set_enabled(ctx: HandlerContext, login: str, enabled: bool) -> None:
    changed = await ctx.conn.fetchval(
        "UPDATE users SET enabled = $2 WHERE login = $1 AND enabled <> $2 RETURNING true",
        login,
        enabled,
    )
    if changed:
        # The notification service signs a disabled user out of their desktop.
        event = UserEnabled(login=login) if enabled else UserDisabled(login=login)
        await ctx.emit(event, correlation_id=rules.personal_account(login))


async def on_show_user(ctx: HandlerContext, query: ShowUser) -> UserView | ErrorReply:
    return await user_view(ctx, query.login) or ErrorReply(error=f"no user named {query.login!r}")
