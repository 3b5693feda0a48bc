"""job-capture's handlers for identity at print: each queue's mode, and the identity of a
job being captured (the rule itself is in `identity`, the broker's view in `presence`)."""

from __future__ import annotations

from platen.events.jobs import SubmitJob
from platen.events.print_identity import (
    GetPrinterIdentity,
    JobIdentity,
    ListPrinterIdentities,
    PrinterIdentities,
    PrinterIdentity,
    SetPrinterIdentity,
)
from platen.job_capture import presence
from platen.job_capture.domain import identity_mode, marks_of
from platen.job_capture.identity import decide
from platen.job_capture.subscriptions import subscribe
from platen.messaging.handling import HandlerContext
from platen.messaging.senders import ADMIN


async def identify(ctx: HandlerContext, cmd: SubmitJob) -> JobIdentity:
    """How the user of the job being submitted is known; the job's log lines say so
    from here on when the queue is `trusted`."""
    mode, _ = identity_mode(await ctx.store.identity_mode(cmd.printer))
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
    ctx.mark(**marks_of(identity))
    return identity


@subscribe.command(SetPrinterIdentity, senders=ADMIN)
async def on_set(ctx: HandlerContext, cmd: SetPrinterIdentity) -> PrinterIdentity:
    await ctx.store.set_identity_mode(cmd.printer, cmd.mode)
    log = ctx.log.bind(identity="trusted") if cmd.mode == "trusted" else ctx.log
    (log.warning if cmd.mode == "trusted" else log.info)(
        "printer identity mode set", printer=cmd.printer, mode=cmd.mode
    )
    return PrinterIdentity(printer=cmd.printer, mode=cmd.mode, explicit=True)


@subscribe.query(GetPrinterIdentity)
async def on_get(ctx: HandlerContext, query: GetPrinterIdentity) -> PrinterIdentity:
    mode, explicit = identity_mode(await ctx.store.identity_mode(query.printer))
    return PrinterIdentity(printer=query.printer, mode=mode, explicit=explicit)


@subscribe.query(ListPrinterIdentities)
async def on_list(ctx: HandlerContext, query: ListPrinterIdentities) -> PrinterIdentities:
    rows = await ctx.store.identity_modes(query.mode)
    return PrinterIdentities(
        printers=[PrinterIdentity(printer=p, mode=m, explicit=True) for p, m in rows]
    )
