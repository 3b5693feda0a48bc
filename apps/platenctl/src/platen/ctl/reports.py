"""platenctl reports from the ledger: `report`, `account invoice`, and `user delete`."""

from __future__ import annotations

import csv
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, time, timedelta
from typing import Annotated, Literal, TextIO

import typer

from platen import rpc
from platen.ctl.common import call, cut_short, run
from platen.ctl.ledger import account_app
from platen.events.accounts import DeleteUser, UserDeleted
from platen.events.discovery import amqp_url
from platen.events.reports import (
    Invoice,
    InvoiceQuery,
    ReportBy,
    ReportRow,
    ReportSpan,
    ReportSpanQuery,
    UsageReport,
    UsageReportQuery,
    merge_reports,
    report_pages,
)

Json = Annotated[bool, typer.Option("--json", help="Print JSON.")]
Csv = Annotated[bool, typer.Option("--csv", help="Print CSV.")]
From = Annotated[
    str | None, typer.Option("--from", help="From this day (YYYY-MM-DD, local time) on.")
]
To = Annotated[str | None, typer.Option("--to", help="Up to and including this day.")]

REPORT_COLUMNS = [
    "jobs", "sides", "color_sides", "grayscale_sides", "charged", "refunded", "amount",
]  # fmt: skip
INVOICE_COLUMNS = [
    "date", "transaction", "kind", "user", "job", "document", "printer", "sides", "amount",
    "comment",
]  # fmt: skip


def _moment(text: str, option: str) -> datetime:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not YYYY-MM-DD[THH:MM]", param_hint=option) from None
    return when if when.tzinfo else when.astimezone()


def period(start: str | None, end: str | None) -> tuple[datetime | None, datetime | None]:
    """[since, until) from `--from` and `--to`: a day given to `--to` counts whole (until
    the next midnight, local time), a moment given to it does not include that moment."""
    since = _moment(start, "--from") if start else None
    until = None
    if end:
        until = _moment(end, "--to")
        if "T" not in end and " " not in end:
            until = datetime.combine(until.date() + timedelta(days=1), time()).astimezone()
    if since and until and until <= since:
        raise typer.BadParameter("--to is before --from", param_hint="--to")
    return since, until


# The ledger's one reply to one page: a page covers a period of time, so a page's work
# (and its reply) follows the jobs in it, not the whole range.
PAGE_TIMEOUT = 120.0
Ask = Callable[[object, float], Awaitable[object]]


async def stream_report(
    ask: Ask,
    by: ReportBy,
    since: datetime | None,
    until: datetime | None,
    page: timedelta,
    on_page: Callable[[int, int], None] = lambda done, total: None,
) -> UsageReport:
    """The report of [since, until), asked for period by period (`page` long, over only
    the time that has charges or refunds) and merged; `on_page(done, total)` after each.
    Equal to the report asked in one piece (services/account-ledger/tests/integration/
    test_reports_db.py)."""
    span: ReportSpan = await ask(ReportSpanQuery(), 15.0)  # type: ignore[assignment]
    whole = UsageReportQuery(by=by, since=since, until=until)
    if span.first is None or span.last is None:
        return await ask(whole, PAGE_TIMEOUT)  # type: ignore[return-value]
    # Nothing before the first charge or after the last one: no page is asked for it.
    start = max(since, span.first) if since else span.first
    end = span.last + timedelta(microseconds=1)
    end = min(until, end) if until else end
    pages = report_pages(start, end, page) if start < end else []
    if len(pages) <= 1:
        return await ask(whole, PAGE_TIMEOUT)  # type: ignore[return-value]
    parts = []
    for a, b in pages:
        parts.append(await ask(UsageReportQuery(by=by, since=a, until=b), PAGE_TIMEOUT))
        on_page(len(parts), len(pages))
    return merge_reports(by, since, until, parts)  # type: ignore[arg-type]


def shows_progress(out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> bool:
    """A progress bar only for a person watching: the report goes to a terminal and the
    bar (on stderr) would too. Piped or redirected (CSV or JSON to a file), none."""
    return out.isatty() and err.isatty()


@contextmanager
def progress_bar(show: bool) -> Iterator[Callable[[int, int], None]]:
    """An `on_page` for `stream_report`: a bar on stderr that is gone when the report
    prints, or nothing at all."""
    if not show:
        yield lambda done, total: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(
        TextColumn("report"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("pages"),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task("report", total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield advance


def _report(by: ReportBy, since, until, page: timedelta) -> UsageReport:
    async def go() -> UsageReport:
        async with rpc.connect(amqp_url()) as client:

            async def ask(message, timeout: float):
                return await client.request(message.message_type, message, timeout)

            with progress_bar(shows_progress()) as on_page:
                return await stream_report(ask, by, since, until, page, on_page)

    return run(go())


def _cells(row: ReportRow) -> list:
    return [getattr(row, c) for c in REPORT_COLUMNS]


def register(app: typer.Typer, user_app: typer.Typer) -> None:
    @app.command()
    def report(
        by: Annotated[
            Literal["user", "group", "printer", "account"],
            typer.Option(help="One line per user, group, printer or account charged."),
        ],
        start: From = None,
        end: To = None,
        page_days: Annotated[
            int, typer.Option(min=1, help="Ask the ledger for this many days at a time.")
        ] = 7,
        as_csv: Csv = False,
        as_json: Json = False,
    ) -> None:
        """Jobs charged and refunds made in a period: jobs, sides (colour and grayscale),
        the amount charged, refunded and net, per line and in total; from the ledger's
        postings, so the total is what the ledger moved, to the cent. A long period is
        asked for a few days at a time, with a progress bar on a terminal."""
        since, until = period(start, end)
        result = _report(by, since, until, timedelta(days=page_days))
        if as_json:
            typer.echo(result.model_dump_json())
            return
        if as_csv:
            out = csv.writer(sys.stdout)
            out.writerow([by, *REPORT_COLUMNS])
            for row in result.lines:
                out.writerow([row.key, *_cells(row)])
            out.writerow(["TOTAL", *_cells(result.total)])
            return
        width = max([len(by), 5, *(len(r.key) for r in result.lines)])
        typer.echo(
            f"{by:<{width}} {'jobs':>6} {'sides':>7} {'colour':>7} {'gray':>7} "
            f"{'charged':>10} {'refunded':>10} {'amount':>10}"
        )
        for row in [*result.lines, result.total.model_copy(update={"key": "TOTAL"})]:
            typer.echo(
                f"{row.key:<{width}} {row.jobs:>6} {row.sides:>7} {row.color_sides:>7} "
                f"{row.grayscale_sides:>7} {row.charged:>10} {row.refunded:>10} {row.amount:>10}"
            )
        if by == "group":
            typer.echo("(a user in several groups is in each; TOTAL counts each job once)")

    @account_app.command("invoice")
    def account_invoice(
        account: str,
        start: From = None,
        end: To = None,
        limit: Annotated[int, typer.Option(min=1, max=100_000, help="At most this many lines.")] = (
            10_000
        ),
        as_csv: Csv = False,
        as_json: Json = False,
    ) -> None:
        """An account's charges (date, user, job, document, sides, amount, comment) and
        refunds in a period, with the total: what its statement shows for the period."""
        since, until = period(start, end)
        query = InvoiceQuery(account=account, since=since, until=until, limit=limit)
        inv: Invoice = call(query, timeout=120)
        if inv.truncated:
            cut_short("invoice", f"{len(inv.lines)} lines", "--from/--to or --limit")
        if as_json:
            typer.echo(inv.model_dump_json())
            return
        rows = [
            [
                x.at.isoformat(), x.transaction_id, x.kind, x.user or "", x.job_id or "",
                x.document_name or "", x.printer or "", x.sides if x.sides is not None else "",
                x.amount, x.comment or "",
            ]
            for x in inv.lines
        ]  # fmt: skip
        if as_csv:
            out = csv.writer(sys.stdout)
            out.writerow(INVOICE_COLUMNS)
            out.writerows(rows)
            # In the kind column, so that a sheet summing by kind finds it apart.
            out.writerow(["", "", "TOTAL", "", "", "", "", "", inv.total, ""])
            return
        span = f"{since:%Y-%m-%d}" if since else "the start"
        span += f" to {until:%Y-%m-%d %H:%M}" if until else " to now"
        typer.echo(f"Invoice for {inv.account}, {span}")
        for x in inv.lines:
            what = f"{x.document_name or '-'} on {x.printer or '-'}, {x.sides or '-'} sides"
            note = f"  ({x.comment})" if x.comment else ""
            typer.echo(
                f"{x.at:%Y-%m-%d %H:%M}  {x.kind:<7} {x.user or '-':<12} {x.amount:>10}  "
                f"{what}{note}"
            )
        typer.echo(f"charged {inv.charged}, refunded {inv.refunded}, total {inv.total}")
        typer.echo(
            f"balance {inv.opening_balance} at the start, {inv.closing_balance} at the end "
            f"(other movements {inv.other})"
        )

    @user_app.command("delete")
    def user_delete(login: str, as_json: Json = False) -> None:
        """Delete a user with a zero balance and no job held or waiting: they print and
        sign in no more and are listed no more; their transactions and jobs stay, and the
        reports still show them. Deleting them again changes nothing."""
        done: UserDeleted = call(DeleteUser(login=login))
        if as_json:
            typer.echo(done.model_dump_json())
            return
        when = f"{done.deleted_at:%Y-%m-%d %H:%M}"
        typer.echo(f"{login}: deleted {'already, on' if done.already else 'on'} {when}")
