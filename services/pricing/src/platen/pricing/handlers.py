"""Pricing's message handlers: the adapter between the broker, the database and `pricing`."""

from __future__ import annotations

from platen.events.jobs import JobCaptured, JobDenied, JobPriced
from platen.events.printers import AddPrinter, PrinterView, ShowPrinter
from platen.events.system import ErrorReply
from platen.messaging.handling import HandlerContext
from platen.pricing.pricing import job_cost

SERVICE = "pricing"


async def on_job_captured(ctx: HandlerContext, event: JobCaptured) -> None:
    job_id = str(event.job_id)
    row = await ctx.conn.fetchrow(
        "SELECT price_per_page FROM printers WHERE name = $1", event.printer
    )
    if row is None:
        ctx.log.info("job denied: unknown printer", printer=event.printer)
        await ctx.emit(
            JobDenied(
                job_id=event.job_id,
                user=event.user,
                printer=event.printer,
                document_name=event.document_name,
                reason=f"printer {event.printer!r} is not set up for charging",
                denied_by=SERVICE,
            ),
            correlation_id=job_id,
        )
        return
    cost = job_cost(event.pages, event.copies, row["price_per_page"])
    ctx.log.info("job priced", cost=str(cost), pages=event.pages, copies=event.copies)
    await ctx.emit(
        JobPriced(
            job_id=event.job_id,
            user=event.user,
            printer=event.printer,
            document_name=event.document_name,
            pages=event.pages,
            copies=event.copies,
            cost=cost,
        ),
        correlation_id=job_id,
    )


async def on_add_printer(ctx: HandlerContext, cmd: AddPrinter) -> PrinterView:
    row = await ctx.conn.fetchrow(
        """INSERT INTO printers (name, price_per_page) VALUES ($1, $2)
           ON CONFLICT (name) DO UPDATE
             SET price_per_page = EXCLUDED.price_per_page, updated_at = now()
           RETURNING name, price_per_page""",
        cmd.name,
        cmd.price_per_page,
    )
    ctx.log.info("printer set", printer=cmd.name, price_per_page=str(cmd.price_per_page))
    return PrinterView(name=row["name"], price_per_page=row["price_per_page"])


async def on_show_printer(ctx: HandlerContext, query: ShowPrinter) -> PrinterView | ErrorReply:
    row = await ctx.conn.fetchrow(
        "SELECT name, price_per_page FROM printers WHERE name = $1", query.name
    )
    if row is None:
        return ErrorReply(error=f"no printer named {query.name!r}")
    return PrinterView(name=row["name"], price_per_page=row["price_per_page"])
