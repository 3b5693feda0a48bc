"""Per-user broker identities: one broker user per Platen user, for their desktop client.

A user added by the ledger gets a broker user of the same name, with the permissions of
`platen.messaging.permissions.desktop_user` and a password nobody knows until an admin
issues a credential (`platenctl user credential`). A disabled user loses every permission
and is disconnected; enabled again, they get their permissions back.

The broker's management API is reached at PLATEN_BROKER_MANAGEMENT_URL (with the
credentials of a broker administrator). Without it, identities are not managed: desktops
then sign in however the broker is set up, which is only fit for a development machine.
"""

from __future__ import annotations

import asyncio
import os

import structlog

from platen.events.accounts import UserAdded, UserDisabled, UserEnabled
from platen.events.identities import Credential, IssueCredential
from platen.events.system import ErrorReply
from platen.messaging import permissions
from platen.messaging.broker_admin import BrokerAdmin, new_password, vhost_of
from platen.messaging.handling import HandlerContext

log = structlog.get_logger("notification.identities")

# Connections opened just before a user was disabled may reach the management API's list
# a few seconds late: look for them again after these delays.
DISCONNECT_RETRIES = (0.5, 1, 2, 4, 8)

_admin: BrokerAdmin | None = None
_background: set[asyncio.Task] = set()


def admin() -> BrokerAdmin | None:
    return _admin


async def start(rt) -> None:
    """on_ready hook: connect to the management API and repair every known identity."""
    global _admin
    url = os.environ.get("PLATEN_BROKER_MANAGEMENT_URL")
    if not url:
        log.warning("desktop identities are not managed: PLATEN_BROKER_MANAGEMENT_URL unset")
        return
    _admin = BrokerAdmin(url, vhost_of(rt.settings.amqp_url))
    async with rt.pool.acquire() as conn:
        users = await conn.fetch("SELECT login, enabled FROM desktop_users ORDER BY login")
    for user in users:
        await _apply(user["login"], user["enabled"])
    log.info("desktop identities reconciled", users=len(users))


async def _apply(login: str, enabled: bool) -> None:
    assert _admin is not None
    if enabled:
        await _admin.ensure_user(login)
        await _admin.grant(login, permissions.desktop_user(login))
    else:
        await _admin.revoke(login)
        await _admin.disconnect(login, "your Platen account is disabled")


async def _remember(ctx: HandlerContext, login: str, enabled: bool) -> None:
    await ctx.conn.execute(
        """INSERT INTO desktop_users (login, enabled) VALUES ($1, $2)
           ON CONFLICT (login) DO UPDATE SET enabled = $2, changed_at = now()""",
        login,
        enabled,
    )


async def on_user_added(ctx: HandlerContext, event: UserAdded) -> None:
    await ctx.conn.execute(
        "INSERT INTO desktop_users (login) VALUES ($1) ON CONFLICT DO NOTHING", event.login
    )
    enabled = await ctx.conn.fetchval(
        "SELECT enabled FROM desktop_users WHERE login = $1", event.login
    )
    if _admin is not None:
        await _apply(event.login, enabled)
        ctx.log.info("desktop identity ready", user=event.login)


async def on_user_disabled(ctx: HandlerContext, event: UserDisabled) -> None:
    await _remember(ctx, event.login, False)
    if _admin is None:
        return
    await _apply(event.login, False)
    ctx.log.info("desktop identity revoked", user=event.login)
    task = asyncio.create_task(_disconnect_stragglers(event.login))
    _background.add(task)
    task.add_done_callback(_background.discard)


async def _disconnect_stragglers(login: str) -> None:
    for delay in DISCONNECT_RETRIES:
        await asyncio.sleep(delay)
        try:
            if _admin is not None and await _admin.disconnect(login):
                log.info("late desktop connection closed", user=login)
        except Exception as exc:  # a best effort on top of the revoked permissions
            log.warning("could not look for late connections", user=login, error=str(exc))


async def on_user_enabled(ctx: HandlerContext, event: UserEnabled) -> None:
    await _remember(ctx, event.login, True)
    if _admin is not None:
        await _apply(event.login, True)
        ctx.log.info("desktop identity restored", user=event.login)


async def on_issue_credential(ctx: HandlerContext, cmd: IssueCredential) -> Credential | ErrorReply:
    if _admin is None:
        return ErrorReply(
            error="this Platen does not manage desktop sign-in "
            "(the notification service has no PLATEN_BROKER_MANAGEMENT_URL)"
        )
    enabled = await ctx.conn.fetchval(
        "SELECT enabled FROM desktop_users WHERE login = $1", cmd.login
    )
    if enabled is None:
        return ErrorReply(error=f"no user named {cmd.login!r}")
    if not enabled:
        return ErrorReply(error=f"{cmd.login} is disabled")
    password = new_password()
    await _admin.set_password(cmd.login, password)
    await _admin.grant(cmd.login, permissions.desktop_user(cmd.login))
    ctx.log.info("desktop credential issued", user=cmd.login)  # never the password
    return Credential(login=cmd.login, username=cmd.login, password=password)
