"""Per-user broker identities: one broker user per Platen user, for their desktop client.

A user added by the ledger gets a broker user of the same name, with the permissions of
`platen.broker_setup.permissions.desktop_user` and a password nobody knows until an admin
issues a credential (`platenctl user credential`). A disabled user loses every permission
and is disconnected; enabled again, they get their permissions back.

These handlers record what the identity must be (`domain.DesktopIdentity`) and leave the
broker's side to `BrokerIdentities`, after the commit.
"""

from __future__ import annotations

from platen.broker_setup.broker_admin import new_password
from platen.events.accounts import UserAdded, UserDisabled, UserEnabled
from platen.events.identities import (
    Credential,
    DesktopList,
    DesktopSummary,
    IssueCredential,
    ListDesktops,
    RevokeDesktop,
)
from platen.events.system import ErrorReply
from platen.messaging.handling import HandlerContext
from platen.messaging.senders import ADMIN
from platen.notification.broker_identities import BrokerIdentities
from platen.notification.domain import Refused
from platen.notification.subscriptions import subscribe

NOT_MANAGED = (
    "this Platen does not manage desktop sign-in "
    "(the notification service has no PLATEN_BROKER_MANAGEMENT_URL)"
)


class IdentityHandlers:
    def __init__(self, broker: BrokerIdentities) -> None:
        self.broker = broker

    @subscribe.event(UserAdded)
    async def on_user_added(self, ctx: HandlerContext, event: UserAdded) -> None:
        await ctx.store.add_desktop_identity(event.login)
        ctx.after_commit(lambda: self.broker.sync_desktop(event.login))

    @subscribe.event(UserDisabled)
    async def on_user_disabled(self, ctx: HandlerContext, event: UserDisabled) -> None:
        identity = await ctx.store.add_desktop_identity(event.login)
        identity.revoke()
        await ctx.store.save_desktop_identity(identity)
        ctx.after_commit(lambda: self.broker.sync_desktop(event.login))

    @subscribe.event(UserEnabled)
    async def on_user_enabled(self, ctx: HandlerContext, event: UserEnabled) -> None:
        identity = await ctx.store.add_desktop_identity(event.login)
        identity.restore()
        await ctx.store.save_desktop_identity(identity)
        ctx.after_commit(lambda: self.broker.sync_desktop(event.login))

    @subscribe.command(IssueCredential, senders=ADMIN)
    async def on_issue_credential(
        self, ctx: HandlerContext, cmd: IssueCredential
    ) -> Credential | ErrorReply:
        if not self.broker.managed:
            return ErrorReply(error=NOT_MANAGED)
        identity = await ctx.store.desktop_identity(cmd.login)
        if identity is None:
            return ErrorReply(error=f"no user named {cmd.login!r}")
        try:
            identity.issue_credential()
        except Refused as exc:
            return ErrorReply(error=str(exc))
        password = new_password()
        # Set on the broker after the commit and before this reply leaves, so the desktop
        # can sign in with it as soon as it has it. Kept nowhere but in the reply.
        ctx.after_commit(lambda: self.broker.issue_desktop_credential(cmd.login, password))
        ctx.log.info("desktop credential issued", user=cmd.login)  # never the password
        return Credential(login=cmd.login, username=cmd.login, password=password)

    @subscribe.command(RevokeDesktop, senders=ADMIN)
    async def on_revoke_desktop(
        self, ctx: HandlerContext, cmd: RevokeDesktop
    ) -> DesktopList | ErrorReply:
        if not self.broker.managed:
            return ErrorReply(error=NOT_MANAGED)
        desktop = await ctx.store.signed_in_desktop(cmd.login, cmd.desktop)
        try:
            if desktop is None:
                raise Refused(f"{cmd.login} has no desktop {cmd.desktop!r} signed in")
            desktop.revoke()
        except Refused as exc:
            return ErrorReply(error=str(exc))
        await ctx.store.save_signed_in_desktop(desktop)
        # The broker user is deleted and its connections closed after the commit and
        # before this reply leaves: when platenctl returns, the desktop is signed out.
        ctx.after_commit(lambda: self.broker.sync_signed_in_desktop(cmd.login, cmd.desktop))
        ctx.log.info("signed-in desktop revoked", user=cmd.login, desktop=cmd.desktop)
        return await on_list_desktops(ctx, ListDesktops(login=cmd.login))


@subscribe.query(ListDesktops, senders=ADMIN)
async def on_list_desktops(ctx: HandlerContext, query: ListDesktops) -> DesktopList:
    desktops = await ctx.store.signed_in_desktops(query.login)
    return DesktopList(
        login=query.login,
        desktops=[
            DesktopSummary.model_validate(d, from_attributes=True)
            for d in desktops
            if not d.revoked
        ],
    )
