"""Users from the site's directory: syncing them, the new-user rules, and making a user on
their first job.

The directory is read outside the transaction: the composition root (main.py) gives the
sync and the priced-job handler their steps (`list_all`, `look_up`). Without a directory
(`PLATEN_DIRECTORY` unset) users are made by hand and a job from anyone else is denied,
as before.
"""

from __future__ import annotations

from dataclasses import dataclass

from platen.account_ledger import domain
from platen.account_ledger.directory import Directory, DirectoryUnavailable, Lookup
from platen.account_ledger.domain import (
    DirectoryEmpty,
    DirectoryUser,
    NewUserRule,
    User,
    plan_sync,
    rule_for,
)
from platen.account_ledger.handlers.common import announce_contact, create_user
from platen.account_ledger.subscriptions import subscribe
from platen.events.accounts import UserDisabled, UserGroupsSet
from platen.events.directory import (
    DirectoryChange,
    DirectorySynced,
    ListNewUserRules,
    NewUserRules,
    RemoveNewUserRule,
    RuleView,
    SetNewUserRule,
    SyncDirectory,
)
from platen.events.system import ErrorReply
from platen.messaging.handling import HandlerContext
from platen.messaging.senders import ADMIN

NO_DIRECTORY = "no directory is set up (PLATEN_DIRECTORY on the account-ledger service)"


@dataclass(frozen=True)
class Listing:
    """Everyone the directory listed, read before the sync's transaction."""

    source: str | None
    users: list[DirectoryUser]
    error: str | None = None


def list_all(directory: Directory | None):
    """The sync's step before its transaction: everyone the directory lists."""

    async def step(_: SyncDirectory) -> Listing:
        if directory is None:
            return Listing(None, [], NO_DIRECTORY)
        try:
            return Listing(directory.source, await directory.users())
        except DirectoryUnavailable as exc:
            return Listing(directory.source, [], str(exc))

    return step


def look_up(directory: Directory | None):
    """A priced job's step before its transaction: its user in the directory (cached), in
    case the ledger does not know them yet; None without a directory."""

    async def step(event) -> Lookup | None:
        return None if directory is None else await directory.lookup(event.user)

    return step


async def first_job(ctx: HandlerContext, login: str, lookup: Lookup) -> User | str:
    """Make the user of a job the ledger has never seen, if the directory knows them and a
    rule matches; else the reason their job is denied."""
    if lookup.unavailable:
        return "your account could not be checked in the directory just now; print again soon"
    if lookup.user is None:
        return f"user {login!r} is not in the directory, so has no account"
    rule = rule_for(lookup.user.groups, await ctx.store.rules())
    if rule is None:
        return f"no new-user rule takes {login!r} (groups: {', '.join(lookup.user.groups) or '-'})"
    await _add(ctx, lookup.user, rule)
    ctx.log.info("user made on their first job", login=login, rule=rule.match)
    return await ctx.store.user(login)


async def _add(ctx: HandlerContext, user: DirectoryUser, rule: NewUserRule) -> None:
    await create_user(
        ctx,
        user.login,
        initial_balance=rule.initial_balance,
        restricted=rule.restricted,
        groups=list(user.groups),
        overdraft_limit=rule.overdraft_limit,
    )
    await ctx.store.set_profile(user)
    if user.email:
        await announce_contact(ctx, user.login)


@subscribe.command(SyncDirectory, senders=ADMIN)
async def on_sync(ctx: HandlerContext, cmd: SyncDirectory) -> DirectorySynced | ErrorReply:
    listing: Listing = ctx.prepared or Listing(None, [], NO_DIRECTORY)
    if listing.error:
        return ErrorReply(error=f"directory not synced: {listing.error}")
    try:
        plan = plan_sync(listing.users, await ctx.store.known_users(), await ctx.store.rules())
    except DirectoryEmpty as exc:
        return ErrorReply(error=f"directory not synced: {exc}")
    reply = DirectorySynced(
        source=listing.source or "",
        dry_run=cmd.dry_run,
        listed=len(listing.users),
        added=[DirectoryChange(login=u.login, detail=f"rule {r.match}") for u, r in plan.add],
        changed=[DirectoryChange(login=u.login, detail=_groups(u)) for u in plan.change],
        disabled=plan.disable,
        no_rule=plan.no_rule,
    )
    if cmd.dry_run:
        return reply
    for user, rule in plan.add:
        await _add(ctx, user, rule)
    for user in plan.change:
        revision = await ctx.store.set_groups(user.login, list(user.groups))
        await ctx.store.set_profile(user)
        # The address may have changed (a sync changes a user for any of their details).
        await announce_contact(ctx, user.login)
        await ctx.emit(
            UserGroupsSet(login=user.login, groups=list(user.groups), revision=revision),
            correlation_id=domain.personal_account(user.login),
        )
    for login in plan.disable:
        if await ctx.store.set_enabled(login, False):
            # Signed out of their desktop; their accounts and history stay.
            await ctx.emit(UserDisabled(login=login), correlation_id=domain.personal_account(login))
    ctx.log.info(
        "directory synced",
        source=listing.source,
        added=len(plan.add),
        changed=len(plan.change),
        disabled=len(plan.disable),
        no_rule=len(plan.no_rule),
    )
    return reply


def _groups(user: DirectoryUser) -> str:
    return "groups: " + (", ".join(user.groups) or "-")


async def _rules(ctx: HandlerContext) -> NewUserRules:
    return NewUserRules(
        rules=[
            RuleView(
                match=r.match,
                position=r.position,
                initial_balance=r.initial_balance,
                restricted=r.restricted,
                overdraft_limit=r.overdraft_limit,
            )
            for r in await ctx.store.rules()
        ],
    )


@subscribe.command(SetNewUserRule, senders=ADMIN)
async def on_set_rule(ctx: HandlerContext, cmd: SetNewUserRule) -> NewUserRules:
    rules = await ctx.store.rules()
    position = cmd.position
    if position is None:
        mine = next((r.position for r in rules if r.match == cmd.match), None)
        position = mine if mine is not None else max((r.position for r in rules), default=-1) + 1
    await ctx.store.set_rule(
        NewUserRule(
            match=cmd.match,
            position=position,
            initial_balance=cmd.initial_balance,
            restricted=cmd.restricted,
            overdraft_limit=cmd.overdraft_limit,
        )
    )
    ctx.log.info("new-user rule set", match=cmd.match, position=position)
    return await _rules(ctx)


@subscribe.command(RemoveNewUserRule, senders=ADMIN)
async def on_remove_rule(ctx: HandlerContext, cmd: RemoveNewUserRule) -> NewUserRules | ErrorReply:
    if not await ctx.store.remove_rule(cmd.match):
        return ErrorReply(error=f"no new-user rule for {cmd.match!r}")
    return await _rules(ctx)


@subscribe.query(ListNewUserRules, senders=ADMIN)
async def on_list_rules(ctx: HandlerContext, query: ListNewUserRules) -> NewUserRules:
    return await _rules(ctx)
