"""Statements, reports, invoices and the ledger's self-check."""

from __future__ import annotations

from datetime import timedelta

from platen.account_ledger import domain
from platen.account_ledger.domain import NotFound
from platen.account_ledger.subscriptions import subscribe
from platen.events.accounts import (
    LedgerReport,
    Statement,
    StatementLine,
    StatementView,
    VerifyLedger,
)
from platen.events.reports import (
    Invoice,
    InvoiceLine,
    InvoiceQuery,
    ReportRow,
    ReportSpan,
    ReportSpanQuery,
    UsageReport,
    UsageReportQuery,
)
from platen.events.system import ErrorReply
from platen.messaging.handling import HandlerContext
from platen.messaging.senders import ADMIN
from platen.messaging.settings import setting

# A hold still pending after this long has outlived its job (it should have been posted,
# or voided by the job's cancellation or expiry long before).
max_hold_age = setting(
    "PLATEN_MAX_HOLD_AGE_SECONDS",
    lambda value: timedelta(seconds=int(value)),
    str(int(domain.MAX_HOLD_AGE.total_seconds())),
)


@subscribe.query(Statement, senders=ADMIN)
async def on_statement(ctx: HandlerContext, query: Statement) -> StatementView | ErrorReply:
    try:
        account_id = await ctx.store.resolve(query.account)
    except NotFound as exc:
        return ErrorReply(error=str(exc))
    # One more than asked: whether the limit cut the statement short.
    rows = await ctx.store.statement(account_id, query.since, query.limit + 1)
    truncated = len(rows) > query.limit
    rows = rows[: query.limit]
    lines = [
        StatementLine(
            at=r["created_at"],
            transaction_id=r["id"],
            kind=r["kind"],
            description=r["description"],
            job_id=r["job_id"],
            amount=r["amount"],
            balance_after=r["balance_after"],
        )
        for r in rows
    ]
    # The balance now, not after the last line shown (the two differ when the statement
    # was cut short), read in the same statement as the lines so that they agree.
    closing = rows[0]["closing"] if rows else await ctx.store.balance(account_id)
    opening = lines[0].balance_after - lines[0].amount if lines else closing
    return StatementView(
        account=account_id,
        opening_balance=opening,
        closing_balance=closing,
        lines=lines,
        truncated=truncated,
    )


@subscribe.query(VerifyLedger, senders=ADMIN)
async def on_verify(ctx: HandlerContext, query: VerifyLedger) -> LedgerReport:
    problems = await ctx.store.verify(max_hold_age())
    counts = await ctx.store.counts()
    if problems:
        ctx.log.error("ledger verification failed", problems=problems)
    return LedgerReport(
        transactions=counts["transactions"],
        accounts=counts["accounts"],
        pending_holds=counts["pending_holds"],
        problems=problems,
    )


def _row(line: domain.ReportLine) -> ReportRow:
    return ReportRow(
        key=line.key,
        jobs=line.jobs,
        sides=line.sides,
        color_sides=line.color_sides,
        grayscale_sides=line.grayscale_sides,
        charged=line.charged,
        refunded=line.refunded,
        amount=line.amount,
    )


# Who printed what, and who paid: administrators' business, not a desktop's or a print
# server's (the broker keeps them from sending it; this refuses it if it arrives anyway).
@subscribe.query(UsageReportQuery, senders=ADMIN)
async def on_report(ctx: HandlerContext, query: UsageReportQuery) -> UsageReport:
    lines, total = domain.report(await ctx.store.usage(query.since, query.until), query.by)
    return UsageReport(
        by=query.by,
        since=query.since,
        until=query.until,
        lines=[_row(line) for line in lines],
        total=_row(total),
    )


@subscribe.query(ReportSpanQuery, senders=ADMIN)
async def on_report_span(ctx: HandlerContext, query: ReportSpanQuery) -> ReportSpan:
    first, last = await ctx.store.report_span()
    return ReportSpan(first=first, last=last)


@subscribe.query(InvoiceQuery, senders=ADMIN)
async def on_invoice(ctx: HandlerContext, query: InvoiceQuery) -> Invoice | ErrorReply:
    try:
        account_id = await ctx.store.resolve(query.account)
    except NotFound as exc:
        return ErrorReply(error=str(exc))
    rows = await ctx.store.invoice_lines(account_id, query.since, query.until, query.limit + 1)
    totals = await ctx.store.invoice_totals(account_id, query.since, query.until)
    return Invoice(
        account=account_id,
        since=query.since,
        until=query.until,
        opening_balance=totals.opening,
        charged=totals.charged,
        refunded=totals.refunded,
        total=totals.total,
        other=totals.other,
        closing_balance=totals.closing,
        lines=[
            InvoiceLine(
                at=r["created_at"],
                transaction_id=r["id"],
                kind=r["kind"],
                job_id=r["job_id"],
                user=r["user_login"],
                document_name=r["document_name"],
                printer=r["printer"],
                sides=r["sides"],
                amount=r["amount"],
                # A charge's comment is the user's, from the popup; a refund's its reason.
                comment=r["comment"] if r["kind"] == "charge" else r["description"],
            )
            for r in rows[: query.limit]
        ],
        truncated=len(rows) > query.limit,
    )
