"""Users: creation, settings, lookup."""

from __future__ import annotations

from platen.account_ledger import domain
from platen.account_ledger.domain import NotFound
from platen.account_ledger.handlers.common import (
    announce_contact,
    create_user,
    not_cents,
    user_view,
)
from platen.account_ledger.subscriptions import subscribe
from platen.events.accounts import (
    AddUser,
    DeleteUser,
    ListUsers,
    SetUser,
    ShowUser,
    UserDeleted,
    UserDisabled,
    UserEnabled,
    UserGroupsSet,
    UserList,
    UserSummary,
    UserView,
)
from platen.events.system import ErrorReply
from platen.messaging.handling import HandlerContext
from platen.messaging.senders import ADMIN


@subscribe.command(AddUser, senders=ADMIN)
async def on_add_user(ctx: HandlerContext, cmd: AddUser) -> UserView | ErrorReply:
    if refusal := not_cents(cmd.initial_balance, "starting balance"):
        return refusal
    await create_user(
        ctx,
        cmd.login,
        initial_balance=cmd.initial_balance,
        restricted=cmd.restricted,
        groups=cmd.groups,
    )
    view = await user_view(ctx, cmd.login)
    assert view is not None
    return view


@subscribe.command(SetUser, senders=ADMIN)
async def on_set_user(ctx: HandlerContext, cmd: SetUser) -> UserView | ErrorReply:
    user = await ctx.store.user(cmd.login)
    if user is None:
        return ErrorReply(error=f"no user named {cmd.login!r}")
    if user.deleted:
        return ErrorReply(error=f"{cmd.login} was deleted; a deleted user cannot be changed")
    for what, value in [
        ("overdraft limit", cmd.overdraft_limit),
        ("low-balance threshold", cmd.low_balance_threshold),
    ]:
        if refusal := not_cents(value, what):
            return refusal
    account = domain.personal_account(cmd.login)
    if cmd.restricted is not None:
        await ctx.store.update_account(account, restricted=cmd.restricted)
    if cmd.overdraft_limit is not None:
        await ctx.store.update_account(account, overdraft_limit=cmd.overdraft_limit)
    if cmd.account_selection is not None:
        await ctx.store.update_user(cmd.login, account_selection=cmd.account_selection)
    if cmd.default_account is not None:
        try:
            default = await ctx.store.resolve(cmd.default_account)
        except NotFound as exc:
            return ErrorReply(error=str(exc))
        if default == account:
            default = None
        elif not await _may_use(ctx, cmd.login, default):
            return ErrorReply(error=f"{cmd.login} may not use {default}")
        await ctx.store.update_user(cmd.login, default_account=default)
    if cmd.low_balance_threshold is not None:
        await ctx.store.update_user(cmd.login, low_balance_threshold=cmd.low_balance_threshold)
    if cmd.groups is not None:
        revision = await ctx.store.set_groups(cmd.login, cmd.groups)
        await ctx.emit(
            UserGroupsSet(login=cmd.login, groups=cmd.groups, revision=revision),
            correlation_id=account,
        )
    if cmd.enabled is not None:
        await _set_enabled(ctx, cmd.login, cmd.enabled)
    if cmd.email is not None:
        await ctx.store.update_user(cmd.login, email=cmd.email or None)
    if cmd.email_notices is not None:
        await ctx.store.update_user(cmd.login, email_notices=cmd.email_notices)
    if cmd.email is not None or cmd.email_notices is not None:
        await announce_contact(ctx, cmd.login)
    ctx.log.info("user changed", login=cmd.login)
    return await user_view(ctx, cmd.login)


async def _may_use(ctx: HandlerContext, login: str, account_id: str) -> bool:
    account = await ctx.store.account(account_id)
    return account.may_be_charged_by(login, await ctx.store.user_groups(login))


async def _set_enabled(ctx: HandlerContext, login: str, enabled: bool) -> None:
    if await ctx.store.set_enabled(login, enabled):
        # The notification service signs a disabled user out of their desktop.
        event = UserEnabled(login=login) if enabled else UserDisabled(login=login)
        await ctx.emit(event, correlation_id=domain.personal_account(login))


@subscribe.query(ShowUser, senders=ADMIN)
async def on_show_user(ctx: HandlerContext, query: ShowUser) -> UserView | ErrorReply:
    return await user_view(ctx, query.login) or ErrorReply(error=f"no user named {query.login!r}")


@subscribe.query(ListUsers, senders=ADMIN)
async def on_list_users(ctx: HandlerContext, query: ListUsers) -> UserList:
    # One row past the limit tells the caller the list was cut, without counting them all.
    rows = await ctx.store.user_summaries(query.group, query.limit + 1)
    return UserList(
        users=[
            UserSummary(**dict(r), available=r["balance"] - r["held"]) for r in rows[: query.limit]
        ],
        truncated=len(rows) > query.limit,
    )


@subscribe.command(DeleteUser, senders=ADMIN)
async def on_delete_user(ctx: HandlerContext, cmd: DeleteUser) -> UserDeleted | ErrorReply:
    # Locked first: a job being held for them (which shares this lock) is either held
    # before, and counted below, or finds them deleted and is denied.
    await ctx.store.lock_user(cmd.login)
    user = await ctx.store.user(cmd.login)
    if user is None:
        return ErrorReply(error=f"no user named {cmd.login!r}")
    account = domain.personal_account(cmd.login)
    if user.deleted:
        deleted_at = await ctx.store.delete_user(cmd.login)  # changes nothing: as it was
        return UserDeleted(login=cmd.login, deleted_at=deleted_at, already=True)
    await ctx.store.lock_accounts([account])
    refusal = domain.deletion_refusal(
        cmd.login, await ctx.store.balance(account), await ctx.store.open_jobs(cmd.login)
    )
    if refusal:
        return ErrorReply(error=refusal)
    deleted_at = await ctx.store.delete_user(cmd.login)
    ctx.log.info("user deleted", login=cmd.login)
    # The notification service signs them out of their desktop and takes their broker
    # identity's permissions away, as for a disabled user.
    await ctx.emit(UserDisabled(login=cmd.login), correlation_id=account)
    return UserDeleted(login=cmd.login, deleted_at=deleted_at)
