"""Reports from the ledger: what was printed and paid, grouped by user, group, printer or
account, and a shared account's invoice for a period. Administrators' queries only.

Money in both comes from the ledger's postings, so it agrees with `ledger verify` and with
the accounts' statements to the cent.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import ClassVar, Literal

from pydantic import Field

from platen.events.accounts import AccountRef
from platen.events.base import Part, Query, Reply
from platen.events.money import Money
from platen.events.registry import register

ReportBy = Literal["user", "group", "printer", "account"]


@register
class UsageReportQuery(Query):
    """Query to the ledger (`ledger.report`): jobs charged and refunds made in
    [since, until), grouped `by` user, group (the user's groups when the job was held),
    printer or the account charged."""

    message_type: ClassVar[str] = "ledger.report"
    by: ReportBy
    since: datetime | None = None
    until: datetime | None = None


class ReportRow(Part):
    """One line of a report (or its total). `sides` counts every copy; `color_sides` +
    `grayscale_sides` fall short of it only for jobs held before the ledger kept the
    split. `amount` is `charged` − `refunded`."""

    key: str
    jobs: int
    sides: int
    color_sides: int
    grayscale_sides: int
    charged: Money
    refunded: Money
    amount: Money


@register
class UsageReport(Reply):
    """Reply to `ledger.report`: the lines by key and the total. By group, a job of a user
    in several groups is in each of their lines, and in the total once."""

    message_type: ClassVar[str] = "ledger.report.reply"
    by: ReportBy
    since: datetime | None
    until: datetime | None
    lines: list[ReportRow]
    total: ReportRow


@register
class ReportSpanQuery(Query):
    """Query to the ledger (`ledger.report.span`): when the first and the last charge or
    refund a report can show were made, so that a report over everything can be asked
    for in pages of time."""

    message_type: ClassVar[str] = "ledger.report.span"


@register
class ReportSpan(Reply):
    """Reply to `ledger.report.span`; None: nothing was charged or refunded yet."""

    message_type: ClassVar[str] = "ledger.report.span.reply"
    first: datetime | None
    last: datetime | None


def report_pages(
    since: datetime, until: datetime, page: timedelta
) -> list[tuple[datetime, datetime]]:
    """[since, until) cut into consecutive periods of `page` (the last one shorter): a
    report asked for period by period, then merged, equals the report of the whole."""
    if page <= timedelta(0):
        raise ValueError("a page of a report lasts some time")
    pages, start = [], since
    while start < until:
        end = min(start + page, until)
        pages.append((start, end))
        start = end
    return pages


def _summed(key: str, rows: Sequence[ReportRow]) -> ReportRow:
    money = ("charged", "refunded", "amount")
    counts = ("jobs", "sides", "color_sides", "grayscale_sides")
    fields: dict = {f: sum((getattr(r, f) for r in rows), 0) for f in counts}
    fields.update({f: sum((getattr(r, f) for r in rows), Decimal(0)) for f in money})
    return ReportRow(key=key, **fields)


def merge_reports(
    by: ReportBy, since: datetime | None, until: datetime | None, pages: Sequence[UsageReport]
) -> UsageReport:
    """The report of [since, until) from the reports of the periods that cut it: each
    charge and refund is in one period only, so lines and the total add up (by group too,
    where the total counts each job once in each period, hence once)."""
    by_key: dict[str, list[ReportRow]] = {}
    for page in pages:
        for row in page.lines:
            by_key.setdefault(row.key, []).append(row)
    return UsageReport(
        by=by,
        since=since,
        until=until,
        lines=[_summed(k, by_key[k]) for k in sorted(by_key)],
        total=_summed("total", [p.total for p in pages]),
    )


@register
class InvoiceQuery(Query):
    """Query to the ledger (`ledger.account.invoice`): an account's charges and refunds in
    [since, until), oldest first, at most `limit` lines (the sums cover them all)."""

    message_type: ClassVar[str] = "ledger.account.invoice"
    account: AccountRef
    since: datetime | None = None
    until: datetime | None = None
    limit: int = Field(default=10_000, ge=1, le=100_000)


class InvoiceLine(Part):
    """A charge (a positive amount) or a refund (negative). `comment`: what the user typed
    at the popup for a charge, the reason given for a refund."""

    at: datetime
    transaction_id: int
    kind: Literal["charge", "refund"]
    job_id: uuid.UUID | None
    user: str | None
    document_name: str | None
    printer: str | None
    sides: int | None
    amount: Money
    comment: str | None = None


@register
class Invoice(Reply):
    """Reply to `ledger.account.invoice`. `total` = `charged` − `refunded`, the sum of the
    lines when not `truncated`; `opening_balance` − `total` + `other` (top-ups, transfers,
    adjustments, quotas in the period) = `closing_balance`, as the account's statement
    for the period shows."""

    message_type: ClassVar[str] = "ledger.account.invoice.reply"
    account: str
    since: datetime | None
    until: datetime | None
    opening_balance: Money
    charged: Money
    refunded: Money
    total: Money
    other: Money
    closing_balance: Money
    lines: list[InvoiceLine]
    truncated: bool = False
