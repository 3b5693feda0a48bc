"""Per-user broker identities: one broker user per Platen user, for their desktop client.

A user added by the ledger gets a broker user of the same name, with the permissions of
`platen.messaging.permissions.desktop_user` and a password nobody knows until an admin
issues a credential (`platenctl user credential`). A disabled user loses every permission
and is disconnected; enabled again, they get their permissions back.

These handlers record what the identity must be (`domain.DesktopIdentity`) and leave the
broker's side to `BrokerIdentities`, after the commit.
"""

from __future__ import annotations

from platen.events.accounts import UserAdded, UserDisabled, UserEnabled
from platen.events.identities import Credential, IssueCredential
from platen.events.system import ErrorReply
from platen.messaging.broker_admin import new_password
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
