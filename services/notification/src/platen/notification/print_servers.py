"""Print servers' broker identities: `platenctl printserver add|list|remove`.

Each print server signs in as a broker user of its own (`platen.messaging.print_servers`),
so that job-capture knows, from the broker-checked `user_id` of a request, which print
server sends it. The notification service manages them because it holds the key to the
broker's management API (it manages desktop identities the same way).
"""

from __future__ import annotations

import structlog

from platen.events.identities import (
    AddPrintServer,
    ListPrintServers,
    PrintServerCredential,
    PrintServerList,
    PrintServerSummary,
    RemovePrintServer,
)
from platen.events.system import ErrorReply
from platen.messaging import permissions, print_servers
from platen.messaging.handling import HandlerContext
from platen.notification import identities

log = structlog.get_logger("notification.print_servers")

NOT_MANAGED = (
    "this Platen does not manage broker identities "
    "(the notification service has no PLATEN_BROKER_MANAGEMENT_URL)"
)


async def start(rt) -> None:
    """on_ready hook (after identities.start): give every known print server exactly a
    print server's permissions again, so that an upgrade that narrows them applies."""
    admin = identities.admin()
    if admin is None:
        return
    async with rt.pool.acquire() as conn:
        rows = await conn.fetch("SELECT username FROM print_servers ORDER BY name")
    for row in rows:
        await admin.grant(row["username"], permissions.print_server())
    log.info("print server identities reconciled", print_servers=len(rows))


async def on_add(ctx: HandlerContext, cmd: AddPrintServer) -> PrintServerCredential | ErrorReply:
    admin = identities.admin()
    if admin is None:
        return ErrorReply(error=NOT_MANAGED)
    username, password = await print_servers.issue(admin, cmd.name)
    await ctx.conn.execute(
        """INSERT INTO print_servers (name, username) VALUES ($1, $2)
           ON CONFLICT (name) DO UPDATE SET username = $2""",
        cmd.name,
        username,
    )
    ctx.log.info("print server identity issued", print_server=cmd.name)  # never the password
    return PrintServerCredential(name=cmd.name, username=username, password=password)


async def on_remove(ctx: HandlerContext, cmd: RemovePrintServer) -> PrintServerList | ErrorReply:
    admin = identities.admin()
    if admin is None:
        return ErrorReply(error=NOT_MANAGED)
    username = await ctx.conn.fetchval(
        "DELETE FROM print_servers WHERE name = $1 RETURNING username", cmd.name
    )
    if username is None:
        return ErrorReply(error=f"no print server named {cmd.name!r}")
    await print_servers.withdraw(admin, username)
    ctx.log.info("print server identity removed", print_server=cmd.name)
    return await on_list(ctx, ListPrintServers())


async def on_list(ctx: HandlerContext, query: ListPrintServers) -> PrintServerList:
    rows = await ctx.conn.fetch("SELECT name, username, added_at FROM print_servers ORDER BY name")
    return PrintServerList(print_servers=[PrintServerSummary(**dict(r)) for r in rows])
