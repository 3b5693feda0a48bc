"""Reports, invoices and deleting a user against a real PostgreSQL: the sums agree with the
ledger's own tables to the cent, and a user deleted while a job of theirs is priced is
either kept (the job held) or gone (the job denied), never both."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import asyncpg
import pytest

from platen.account_ledger.handlers import accounts, jobs, money, reports, users
from platen.events.accounts import (
    AddAccount,
    AddUser,
    AnswerJob,
    DeleteUser,
    GrantAccess,
    Refund,
    SetUser,
    Statement,
    TopUp,
)
from platen.events.reports import (
    InvoiceQuery,
    ReportSpanQuery,
    UsageReportQuery,
    merge_reports,
    report_pages,
)
from platen.events.system import ErrorReply

from ..builders import priced, printed


async def add_user(ledger, login: str, balance: str, groups: list[str]) -> None:
    await ledger.run(
        users.on_add_user, AddUser(login=login, initial_balance=D(balance), groups=groups)
    )


async def print_job(ledger, user: str, cost: str, printer: str, **kw):
    job = priced(user, cost, **kw).model_copy(update={"printer": printer})
    await ledger.run(jobs.on_job_priced, job)
    await ledger.run(jobs.on_job_printed, printed(job))
    return job


async def revenue_by(ledger, column: str) -> dict[str, D]:
    """What charges and refunds moved into revenue, by a column of the job's hold: the
    ledger's own tables, summed here without the report's query."""
    rows = await ledger.fetch(
        f"""SELECT h.{column} AS key, sum(e.amount) AS amount
              FROM entries e JOIN transactions t ON t.id = e.transaction_id
              JOIN holds h ON h.job_id = t.job_id
             WHERE e.account_id LIKE 'system:revenue%' AND t.kind IN ('charge', 'refund')
             GROUP BY 1"""
    )
    return {r["key"]: r["amount"] for r in rows}


async def test_reports_and_an_invoice_match_the_ledger_to_the_cent(ledger):
    await add_user(ledger, "ann", "9.00", ["staff"])
    await add_user(ledger, "bob", "9.00", ["students"])
    await ledger.run(accounts.on_add_account, AddAccount(name="physics"))
    await ledger.run(accounts.on_grant, GrantAccess(account="physics", users=["bob"]))
    await print_job(ledger, "ann", "0.35", "lab-1", color_sides=1, grayscale_sides=2)
    await print_job(ledger, "ann", "1.15", "lab-2", color_sides=3, grayscale_sides=0)
    refunded = await print_job(ledger, "bob", "0.45", "lab-1", color_sides=0, grayscale_sides=3)
    await ledger.run(
        money.on_refund, Refund(key="r1", job_id=refunded.job_id, amount=D("0.15"), reason="jam")
    )
    await ledger.run(users.on_set_user, SetUser(login="bob", account_selection="choose"))
    shared = priced("bob", "0.70", color_sides=2, grayscale_sides=1)
    shared = shared.model_copy(update={"printer": "lab-2"})
    await ledger.run(jobs.on_job_priced, shared)
    await ledger.run(
        jobs.on_answer,
        AnswerJob(job_id=shared.job_id, user="bob", action="print", account="physics",
                  comment="project 7"),
    )  # fmt: skip
    await ledger.run(jobs.on_job_printed, printed(shared))
    # bob moves to another group: his jobs stay in the group he printed them in.
    await ledger.run(users.on_set_user, SetUser(login="bob", groups=["staff"]))

    for by, column in [("printer", "printer"), ("user", "user_login"), ("account", "account_id")]:
        report = await ledger.run(reports.on_report, UsageReportQuery(by=by))
        assert {r.key: r.amount for r in report.lines} == await revenue_by(ledger, column), by
        assert report.total.amount == D("2.50")  # 0.35 + 1.15 + 0.45 - 0.15 + 0.70
    by_printer = await ledger.run(reports.on_report, UsageReportQuery(by="printer"))
    counts = [(r.key, r.jobs, r.sides, r.color_sides, r.grayscale_sides) for r in by_printer.lines]
    # lab-2's second job was held from its question: the question kept its colour split.
    assert counts == [("lab-1", 2, 6, 1, 5), ("lab-2", 2, 6, 5, 1)]
    by_group = await ledger.run(reports.on_report, UsageReportQuery(by="group"))
    assert {r.key: r.amount for r in by_group.lines} == {
        "staff": D("1.50"),
        "students": D("1.00"),
    }

    invoice = await ledger.run(reports.on_invoice, InvoiceQuery(account="physics"))
    assert [(x.kind, x.user, x.printer, x.amount, x.comment) for x in invoice.lines] == [
        ("charge", "bob", "lab-2", D("0.70"), "project 7")
    ]
    statement = await ledger.run(reports.on_statement, Statement(account="physics"))
    moved = sum(x.amount for x in statement.lines if x.kind in ("charge", "refund"))
    assert invoice.total == -moved == D("0.70")
    assert invoice.closing_balance == statement.closing_balance
    # A period that has not begun yet has nothing, and opens at today's balance.
    later = datetime.now(UTC) + timedelta(days=1)
    empty = await ledger.run(reports.on_invoice, InvoiceQuery(account="physics", since=later))
    assert (empty.lines, empty.total, empty.opening_balance) == ([], D(0), D("-0.70"))
    nothing = await ledger.run(reports.on_report, UsageReportQuery(by="user", since=later))
    assert (nothing.lines, nothing.total.amount) == ([], D(0))


async def test_what_a_hold_records_for_reports_cannot_be_changed(ledger):
    await add_user(ledger, "cat", "5.00", ["staff"])
    job = await print_job(ledger, "cat", "0.30", "lab-1", color_sides=1, grayscale_sides=2)
    for change in ("color_sides = 0", "user_groups = '{}'", "printer = 'lab-9'"):
        with pytest.raises(asyncpg.CheckViolationError):
            await ledger.fetch(f"UPDATE holds SET {change} WHERE job_id = $1", job.job_id)


async def test_a_user_deleted_while_their_job_is_priced_is_either_kept_or_denies_it(ledger):
    """Delivered at once, the delete and the price take the user's row in turn: the job
    is held and the delete refused, or the user is deleted and the job denied."""
    for n in range(6):
        login = f"racer{n}"
        await ledger.run(users.on_add_user, AddUser(login=login, restricted=False))
        job = priced(login, "0.20")
        deleted, _ = await asyncio.gather(
            ledger.run(users.on_delete_user, DeleteUser(login=login)),
            ledger.run(jobs.on_job_priced, job),
        )
        hold = await ledger.fetchval("SELECT state FROM holds WHERE job_id = $1", job.job_id)
        if isinstance(deleted, ErrorReply):
            assert "held" in deleted.error and hold == "pending"
            await ledger.run(jobs.on_job_printed, printed(job))
        else:
            assert hold is None
            denied = [m for m in await ledger.emitted("job.denied") if m.job_id == job.job_id]
            assert ["deleted" in m.reason for m in denied] == [True]


async def test_a_user_deleted_while_topped_up_keeps_the_money_or_refuses_it(ledger):
    """Delivered at once, a delete and a top-up take the user's row in turn: the money is
    paid in and the delete refused (a balance is left), or the user is deleted and the
    top-up refused. Never deleted with money on the account."""
    for n in range(6):
        login = f"payee{n}"
        await ledger.run(users.on_add_user, AddUser(login=login, restricted=False))
        deleted, topped = await asyncio.gather(
            ledger.run(users.on_delete_user, DeleteUser(login=login)),
            ledger.run(money.on_topup, TopUp(key=login, account=login, amount=D("2.00"))),
        )
        balance = await ledger.fetchval(
            "SELECT balance FROM accounts WHERE id = $1", f"personal:{login}"
        )
        if isinstance(deleted, ErrorReply):
            assert "balance of 2.00" in deleted.error and balance == D("2.00")
            assert not isinstance(topped, ErrorReply)
        else:
            assert isinstance(topped, ErrorReply) and f"{login} was deleted" in topped.error
            assert balance == 0


async def test_a_hold_from_before_the_colour_split_counts_its_sides_and_todays_groups(ledger):
    """Holds made before migration 011 know no colour split and no groups: their sides
    count without one, and their user's groups are read as they are now."""
    await add_user(ledger, "old", "5.00", ["staff"])
    job = priced("old", "0.30")
    async with ledger.pool.acquire() as conn, conn.transaction():
        await conn.execute(
            """INSERT INTO holds (job_id, account_id, user_login, base_cost, charge_rate,
                                  amount, state, printer, document_name, pages, copies)
               VALUES ($1, 'personal:old', 'old', 0.30, 1, 0.30, 'pending', 'lab-1',
                       'doc.pdf', 3, 2)""",
            job.job_id,
        )
    await ledger.run(jobs.on_job_printed, printed(job))
    [line] = (await ledger.run(reports.on_report, UsageReportQuery(by="group"))).lines
    assert (line.key, line.jobs, line.sides, line.color_sides, line.grayscale_sides) == (
        "staff",
        1,
        6,
        0,
        0,
    )
    assert line.amount == D("0.30")


async def test_a_report_asked_in_pages_of_time_equals_the_report_of_the_whole(ledger):
    """What `platenctl report` does for a large range: ask period by period (each page
    much shorter than the span of the rows), and merge."""
    await add_user(ledger, "ann", "20.00", ["staff", "lab"])
    await add_user(ledger, "bob", "20.00", ["students"])
    jobs_made = []
    for n in range(8):
        user, printer = ("ann", "lab-1") if n % 3 else ("bob", "lab-2")
        job = await print_job(
            ledger, user, f"0.{n + 1}5", printer, color_sides=n % 2, grayscale_sides=1
        )
        jobs_made.append(job)
        if n == 4:
            refund = Refund(key="r-page", job_id=job.job_id, amount=D("0.05"), reason="jam")
            await ledger.run(money.on_refund, refund)
    span = await ledger.run(reports.on_report_span, ReportSpanQuery())
    assert span.first is not None and span.last > span.first
    until = span.last + timedelta(microseconds=1)
    pages = report_pages(span.first, until, (until - span.first) / 5)
    assert len(pages) >= 5
    for by in ("user", "group", "printer", "account"):
        whole = await ledger.run(reports.on_report, UsageReportQuery(by=by))
        parts = [
            await ledger.run(reports.on_report, UsageReportQuery(by=by, since=a, until=b))
            for a, b in pages
        ]
        # Pages smaller than the rows: no page holds every job.
        assert all(p.total.jobs < len(jobs_made) for p in parts) and whole.total.jobs == 8
        assert merge_reports(by, None, None, parts) == whole, by
