"""Client options from the server: the administrator sets them for the site or a group,
and each user's desktop is sent what applies to it (`domain.desktop_options`).

notification.client.set / unset -> stored -> desktop `client_options` to each desktop concerned
user.groups_set (the ledger's)  -> the user's groups kept -> desktop `client_options`
desktop reply `user.<login>.hello` (a client starting) -> desktop `client_options`

Each notice is composed under one lock and numbered from one sequence, so the numbers
follow the states they describe: a desktop that receives two notices out of order keeps
the higher number, which is the newer state.
"""

from __future__ import annotations

import functools
import time

import structlog

from platen.events.accounts import UserGroupsSet
from platen.events.client_options import (
    BadOption,
    ClientHello,
    ClientOptionsChanged,
    ClientOptionsNotice,
    ClientOptionsView,
    SetClientOption,
    ShowClientOptions,
    UnsetClientOption,
    normal_value,
)
from platen.events.routing import login_of_key
from platen.events.system import ErrorReply
from platen.messaging.handling import HandlerContext
from platen.messaging.senders import ADMIN
from platen.messaging.settings import setting
from platen.notification.domain import AnswerRates, Sender, Take, desktop_options, sender_problem
from platen.notification.prompts import require_user_id
from platen.notification.sending import send
from platen.notification.subscriptions import subscribe

SITE = ""
# A notice a desktop has not read within this time is dropped from its queue: a client
# that starts later says hello and is sent the options of that moment.
NOTICE_TTL_MS = 3_600_000


# A client says hello when it connects; a desktop saying it much more often is dropped
# before any work is done for it. Counted per notification process: made at the first
# hello (or at start), and kept.
@functools.cache
def hello_rates() -> AnswerRates:
    return AnswerRates(rate=_hello_rate(), burst=_hello_burst())


_hello_rate = setting("PLATEN_HELLO_RATE", float, "0.2")
_hello_burst = setting("PLATEN_HELLO_BURST", int, "5")


CLOCK = time.monotonic
log = structlog.get_logger(__name__)


async def _send_options(ctx: HandlerContext, logins: list[str]) -> int:
    """Send each of `logins` its options now. The caller holds the options lock."""
    site, groups = await ctx.store.client_options()
    revision = await ctx.store.next_options_revision()
    for login in logins:
        options = desktop_options(site, groups, await ctx.store.client_user_groups(login))
        notice = ClientOptionsNotice(revision=revision, options=options)
        await send(ctx, login, notice, expiration_ms=NOTICE_TTL_MS)
    return len(logins)


async def _audience(ctx: HandlerContext, group: str | None) -> list[str]:
    return await (ctx.store.enabled_members(group) if group else ctx.store.enabled_logins())


@subscribe.command(SetClientOption, senders=ADMIN)
async def on_set(ctx: HandlerContext, cmd: SetClientOption) -> ClientOptionsChanged | ErrorReply:
    try:
        value = normal_value(cmd.key, cmd.value)
    except BadOption as exc:
        return ErrorReply(error=str(exc))
    await ctx.store.lock_client_options()
    await ctx.store.set_client_option(cmd.group or SITE, cmd.key, value)
    sent = await _send_options(ctx, await _audience(ctx, cmd.group))
    ctx.log.info("client option set", key=cmd.key, group=cmd.group, desktops=sent)
    return ClientOptionsChanged(desktops=sent)


@subscribe.command(UnsetClientOption, senders=ADMIN)
async def on_unset(
    ctx: HandlerContext, cmd: UnsetClientOption
) -> ClientOptionsChanged | ErrorReply:
    await ctx.store.lock_client_options()
    if not await ctx.store.unset_client_option(cmd.group or SITE, cmd.key):
        where = f"group {cmd.group!r}" if cmd.group else "the site"
        return ErrorReply(error=f"client option {cmd.key!r} is not set for {where}")
    sent = await _send_options(ctx, await _audience(ctx, cmd.group))
    ctx.log.info("client option unset", key=cmd.key, group=cmd.group, desktops=sent)
    return ClientOptionsChanged(desktops=sent)


@subscribe.query(ShowClientOptions, senders=ADMIN)
async def on_show(ctx: HandlerContext, query: ShowClientOptions) -> ClientOptionsView:
    site, groups = await ctx.store.client_options()
    if query.user is None:
        return ClientOptionsView(site=site, groups=groups)
    user_groups = await ctx.store.client_user_groups(query.user)
    return ClientOptionsView(
        site=site,
        groups=groups,
        user=query.user,
        user_groups=user_groups,
        effective=desktop_options(site, groups, user_groups),
    )


@subscribe.event(UserGroupsSet)
async def on_user_groups_set(ctx: HandlerContext, event: UserGroupsSet) -> None:
    await ctx.store.lock_client_options()
    before = await ctx.store.client_user_groups(event.login)
    if not await ctx.store.set_client_user_groups(event.login, event.groups, event.revision):
        ctx.log.info("older groups announcement ignored", user=event.login)
        return
    site, groups = await ctx.store.client_options()
    if desktop_options(site, groups, before) == desktop_options(site, groups, event.groups):
        return  # the same options as before (no group of theirs sets any): nothing to send
    identity = await ctx.store.desktop_identity(event.login)
    if identity is not None and identity.enabled:
        await _send_options(ctx, [event.login])


@subscribe.desktop_reply(ClientHello)
async def on_hello(ctx: HandlerContext, hello: ClientHello) -> None:
    problem = sender_problem(
        Sender(ctx.routing_key, ctx.user_id), hello.user, require_user_id=require_user_id()
    )
    if problem is not None:
        ctx.log.warning("hello refused", reason=problem, routing_key=ctx.routing_key)
        return
    identity = await ctx.store.desktop_identity(hello.user)
    if identity is None or not identity.enabled:
        return  # nobody Platen knows (or may sign in): no queue to make for them
    await ctx.store.lock_client_options()
    await _send_options(ctx, [hello.user])


def admit_hello(routing_key: str | None, hello: ClientHello) -> bool:
    """Run by the dispatcher before any work is done: a desktop saying hello over its rate
    is dropped here, with no transaction and nothing stored."""
    login = login_of_key(routing_key or "") or hello.user
    if hello_rates().take(login, CLOCK()) is not Take.ALLOWED:
        log.warning("hello dropped", user=login, reason="too many hellos")
        return False
    return True


on_hello.admit = admit_hello  # type: ignore[attr-defined]
