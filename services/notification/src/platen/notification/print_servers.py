"""Print servers' broker identities: `platenctl printserver add|list|remove`.

Each print server signs in as a broker user of its own (`platen.broker_setup.print_servers`),
so that job-capture knows, from the broker-checked `user_id` of a request, which print
server sends it. The notification service manages them because it holds the key to the
broker's management API (it manages desktop identities the same way): these handlers
record what the identity must be, and `BrokerIdentities` applies it after the commit.
"""

from __future__ import annotations

from platen.broker_setup import print_servers
from platen.broker_setup.broker_admin import new_password
from platen.events.identities import (
    AddPrintServer,
    ListPrintServers,
    PrintServerCredential,
    PrintServerList,
    PrintServerSummary,
    RemovePrintServer,
)
from platen.events.system import ErrorReply
from platen.messaging.handling import HandlerContext
from platen.messaging.senders import ADMIN
from platen.notification.broker_identities import BrokerIdentities
from platen.notification.domain import PrintServerIdentity, Refused
from platen.notification.subscriptions import subscribe

NOT_MANAGED = (
    "this Platen does not manage broker identities "
    "(the notification service has no PLATEN_BROKER_MANAGEMENT_URL)"
)


class PrintServerHandlers:
    def __init__(self, broker: BrokerIdentities) -> None:
        self.broker = broker

    @subscribe.command(AddPrintServer, senders=ADMIN)
    async def on_add(
        self, ctx: HandlerContext, cmd: AddPrintServer
    ) -> PrintServerCredential | ErrorReply:
        if not self.broker.managed:
            return ErrorReply(error=NOT_MANAGED)
        username = print_servers.broker_user(cmd.name)
        server = await ctx.store.print_server(cmd.name)
        if server is None:
            server = PrintServerIdentity(cmd.name, username)
        server.reissue(username)
        await ctx.store.save_print_server(server)
        password = new_password()
        # Set on the broker after the commit and before this reply leaves (see identities).
        ctx.after_commit(lambda: self.broker.issue_print_server(cmd.name, password))
        ctx.log.info("print server identity issued", print_server=cmd.name)  # never the password
        return PrintServerCredential(name=cmd.name, username=username, password=password)

    @subscribe.command(RemovePrintServer, senders=ADMIN)
    async def on_remove(
        self, ctx: HandlerContext, cmd: RemovePrintServer
    ) -> PrintServerList | ErrorReply:
        if not self.broker.managed:
            return ErrorReply(error=NOT_MANAGED)
        server = await ctx.store.print_server(cmd.name)
        try:
            if server is None:
                raise Refused(f"no print server named {cmd.name!r}")
            server.remove()
        except Refused as exc:
            return ErrorReply(error=str(exc))
        await ctx.store.save_print_server(server)
        ctx.after_commit(lambda: self.broker.sync_print_server(cmd.name))
        ctx.log.info("print server identity removed", print_server=cmd.name)
        return await on_list(ctx, ListPrintServers())


@subscribe.query(ListPrintServers)
async def on_list(ctx: HandlerContext, query: ListPrintServers) -> PrintServerList:
    rows = await ctx.store.print_server_list()
    return PrintServerList(print_servers=[PrintServerSummary(**dict(r)) for r in rows])
