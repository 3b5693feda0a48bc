"""job-capture's handlers for identity at print: each queue's mode, and the identity of a
job being captured (the rule itself is in `identity`, the broker's view in `presence`)."""

from __future__ import annotations

import asyncpg

from platen.events.jobs import SubmitJob
from platen.events.print_identity import (
    DEFAULT_MODE,
    GetPrinterIdentity,
    IdentityMode,
    JobIdentity,
    ListPrinterIdentities,
    PrinterIdentities,
    PrinterIdentity,
    SetPrinterIdentity,
)
from platen.job_capture import presence
from platen.job_capture.identity import decide
from platen.messaging.handling import HandlerContext


async def mode_of(conn: asyncpg.Connection, printer: str) -> tuple[IdentityMode, bool]:
    mode = await conn.fetchval("SELECT mode FROM printer_identity WHERE printer = $1", printer)
    return (mode, True) if mode else (DEFAULT_MODE, False)


async def identify(ctx: HandlerContext, cmd: SubmitJob) -> JobIdentity:
    """How the user of the job being submitted is known; the job's log lines say so
    from here on when the queue is `trusted`."""
    mode, _ = await mode_of(ctx.conn, cmd.printer)
    if mode == "desktop" and cmd.source == "cups":
        origin = await presence.origin(cmd.origin_host)
        desktops = await presence.desktops() if origin is not None else None
        identity = decide(mode, source=cmd.source, user=cmd.user, origin=origin, desktops=desktops)
        ctx.log.info(
            "desktop presence checked",
            origin_host=cmd.origin_host,
            desktops_there=sorted(
                {d.login for d in desktops or [] if origin is not None and origin.holds(d.address)}
            ),
            identity=identity,
        )
    else:
        identity = decide(mode, source=cmd.source, user=cmd.user, origin=None, desktops=None)
    if identity == "trusted":
        ctx.log = ctx.log.bind(identity="trusted")
    return identity


async def on_set(ctx: HandlerContext, cmd: SetPrinterIdentity) -> PrinterIdentity:
    await ctx.conn.execute(
        """INSERT INTO printer_identity (printer, mode) VALUES ($1, $2)
           ON CONFLICT (printer) DO UPDATE SET mode = $2, changed_at = now()""",
        cmd.printer,
        cmd.mode,
    )
    log = ctx.log.bind(identity="trusted") if cmd.mode == "trusted" else ctx.log
    (log.warning if cmd.mode == "trusted" else log.info)(
        "printer identity mode set", printer=cmd.printer, mode=cmd.mode
    )
    return PrinterIdentity(printer=cmd.printer, mode=cmd.mode, explicit=True)


async def on_get(ctx: HandlerContext, query: GetPrinterIdentity) -> PrinterIdentity:
    mode, explicit = await mode_of(ctx.conn, query.printer)
    return PrinterIdentity(printer=query.printer, mode=mode, explicit=explicit)


async def on_list(ctx: HandlerContext, query: ListPrinterIdentities) -> PrinterIdentities:
    rows = await ctx.conn.fetch(
        """SELECT printer, mode FROM printer_identity
           WHERE ($1::text IS NULL OR mode = $1) ORDER BY printer""",
        query.mode,
    )
    return PrinterIdentities(
        printers=[
            PrinterIdentity(printer=r["printer"], mode=r["mode"], explicit=True) for r in rows
        ]
    )
