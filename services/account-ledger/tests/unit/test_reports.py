"""Reports, invoices and deleting a user: the arithmetic in the domain, and the handlers
with an in-memory store and no broker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

from platen.account_ledger import domain
from platen.account_ledger.domain import NO_GROUP, InvoiceTotals, Usage
from platen.account_ledger.handlers import accounts, jobs, money, reports, users
from platen.events.accounts import (
    AddAccount,
    AddUser,
    Adjust,
    AnswerJob,
    DeleteUser,
    GrantAccess,
    ListUsers,
    Refund,
    SetUser,
    TopUp,
    Transfer,
    UserDisabled,
)
from platen.events.jobs import JobDenied
from platen.events.reports import InvoiceQuery, UsageReportQuery
from platen.events.system import ErrorReply
from platen.messaging.fakes import FakeContext

from ..builders import priced, printed
from .fakes import FakeStore


def usage(user="ann", printer="lab-1", account="personal:ann", groups=(), **kw) -> Usage:
    return Usage(user=user, printer=printer, account=account, groups=tuple(groups), **kw)


# ----------------------------------------------------------------- the arithmetic


def test_a_report_by_printer_sums_each_printer_and_the_total_to_the_cent():
    rows = [
        usage(printer="lab-1", jobs=2, sides=6, color_sides=2, grayscale_sides=4,
              charged=D("0.10"), refunded=D("0.00")),
        usage(user="bob", printer="lab-1", jobs=1, sides=1, color_sides=0, grayscale_sides=1,
              charged=D("0.20"), refunded=D("0.05")),
        usage(printer="lab-2", jobs=1, sides=3, color_sides=3, grayscale_sides=0,
              charged=D("0.70"), refunded=D("0.70")),
    ]  # fmt: skip
    lines, total = domain.report(rows, "printer")
    assert [(x.key, x.jobs, x.sides, x.color_sides, x.grayscale_sides) for x in lines] == [
        ("lab-1", 3, 7, 2, 5),
        ("lab-2", 1, 3, 3, 0),
    ]
    # 0.10 + 0.20 is 0.30 exactly (it would not be in floats), net of the 0.05 refund.
    assert [(x.charged, x.refunded, x.amount) for x in lines] == [
        (D("0.30"), D("0.05"), D("0.25")),
        (D("0.70"), D("0.70"), D("0.00")),
    ]
    assert (total.key, total.jobs, total.sides, total.amount) == ("total", 4, 10, D("0.25"))
    assert sum(x.amount for x in lines) == total.amount


def test_by_group_a_job_counts_in_each_of_its_users_groups_and_once_in_the_total():
    rows = [
        usage(groups=["staff", "physics"], jobs=1, sides=2, charged=D("0.20")),
        usage(user="bob", groups=[], jobs=1, sides=1, charged=D("0.10")),
    ]
    lines, total = domain.report(rows, "group")
    assert [(x.key, x.jobs, x.amount) for x in lines] == [
        (NO_GROUP, 1, D("0.10")),
        ("physics", 1, D("0.20")),
        ("staff", 1, D("0.20")),
    ]
    assert (total.jobs, total.amount) == (2, D("0.30"))


def test_a_report_by_user_and_by_account_keys_on_them():
    rows = [
        usage(account="shared:physics", jobs=1, charged=D("1.00")),
        usage(jobs=1, charged=D("0.50")),
        usage(user="bob", account="shared:physics", jobs=1, charged=D("0.25")),
    ]
    by_user, _ = domain.report(rows, "user")
    by_account, _ = domain.report(rows, "account")
    assert [(x.key, x.amount) for x in by_user] == [("ann", D("1.50")), ("bob", D("0.25"))]
    assert [(x.key, x.amount) for x in by_account] == [
        ("personal:ann", D("0.50")),
        ("shared:physics", D("1.25")),
    ]


def test_a_report_of_nothing_is_empty_with_a_zero_total_and_a_bad_key_is_refused():
    lines, total = domain.report([], "user")
    assert (lines, total.jobs, total.amount) == ([], 0, D(0))
    with pytest.raises(ValueError, match="not 'colour'"):
        domain.report([], "colour")


def test_an_invoice_closes_where_its_statement_does():
    totals = InvoiceTotals(
        opening=D("10.00"), charged=D("3.30"), refunded=D("0.30"), other=D("5.00")
    )
    assert totals.total == D("3.00")
    assert totals.closing == D("12.00")


def test_a_user_with_money_or_open_jobs_may_not_be_deleted():
    assert "balance of 2.50" in domain.deletion_refusal("ann", D("2.50"), 0)
    assert "adjust ann -2.50" in domain.deletion_refusal("ann", D("2.50"), 0)
    assert "adjust ann 0.40" in domain.deletion_refusal("ann", D("-0.40"), 0)
    assert "1 job(s) held or waiting" in domain.deletion_refusal("ann", D("0.00"), 1)
    assert domain.deletion_refusal("ann", D("0.00"), 0) is None


# ----------------------------------------------------------------- the handlers


@pytest.fixture
def ctx() -> FakeContext:
    return FakeContext(store=FakeStore(), producer="account-ledger")


async def add_user(ctx, login: str, balance: str = "0", groups=()) -> None:
    await users.on_add_user(
        ctx, AddUser(login=login, initial_balance=D(balance), groups=list(groups))
    )


async def print_job(ctx, user: str, cost: str, printer: str = "lab-1", copies=1, **kw):
    job = priced(user, cost, **kw).model_copy(update={"printer": printer, "copies": copies})
    await jobs.on_job_priced(ctx, job)
    await jobs.on_job_printed(ctx, printed(job))
    return job


async def test_the_report_counts_what_was_charged_and_refunded_with_the_colour_split(ctx):
    await add_user(ctx, "ann", "5.00", groups=["staff"])
    await add_user(ctx, "bob", "5.00", groups=["students"])
    await print_job(ctx, "ann", "0.30", color_sides=1, grayscale_sides=2)
    refunded = await print_job(
        ctx, "bob", "0.50", printer="lab-2", color_sides=3, grayscale_sides=0, copies=2
    )
    await money.on_refund(
        ctx, Refund(key="r1", job_id=refunded.job_id, amount=D("0.20"), reason="smudged")
    )
    # A job still held is not charged, so not in a report.
    await jobs.on_job_priced(ctx, priced("ann", "0.10"))

    reply = await reports.on_report(ctx, UsageReportQuery(by="printer"))
    assert [(r.key, r.jobs, r.sides, r.color_sides, r.grayscale_sides) for r in reply.lines] == [
        ("lab-1", 1, 3, 1, 2),
        ("lab-2", 1, 6, 6, 0),
    ]
    assert [(r.key, r.charged, r.refunded, r.amount) for r in reply.lines] == [
        ("lab-1", D("0.30"), D("0"), D("0.30")),
        ("lab-2", D("0.50"), D("0.20"), D("0.30")),
    ]
    assert reply.total.amount == D("0.60")
    by_group = await reports.on_report(ctx, UsageReportQuery(by="group"))
    assert [(r.key, r.amount) for r in by_group.lines] == [
        ("staff", D("0.30")),
        ("students", D("0.30")),
    ]


async def test_a_report_for_a_period_leaves_out_what_happened_outside_it(ctx):
    await add_user(ctx, "ann", "5.00")
    await print_job(ctx, "ann", "0.30")
    now = datetime.now(UTC)
    before = await reports.on_report(
        ctx, UsageReportQuery(by="user", until=now - timedelta(days=1))
    )
    during = await reports.on_report(
        ctx, UsageReportQuery(by="user", since=now - timedelta(days=1), until=now + timedelta(1))
    )
    assert (before.lines, before.total.jobs) == ([], 0)
    assert [(r.key, r.jobs, r.amount) for r in during.lines] == [("ann", 1, D("0.30"))]


async def test_an_invoice_lists_the_charges_and_refunds_of_a_shared_account(ctx):
    await add_user(ctx, "ann", "1.00", groups=["physics"])
    await accounts.on_add_account(ctx, AddAccount(name="physics"))
    await accounts.on_grant(ctx, GrantAccess(account="physics", groups=["physics"]))
    await users.on_set_user(ctx, SetUser(login="ann", account_selection="choose"))
    job = priced("ann", "0.40")
    await jobs.on_job_priced(ctx, job)
    await jobs.on_answer(
        ctx,
        AnswerJob(job_id=job.job_id, user="ann", action="print", account="physics",
                  comment="grant 4711"),
    )  # fmt: skip
    await jobs.on_job_printed(ctx, printed(job))
    await money.on_refund(ctx, Refund(key="r", job_id=job.job_id, amount=D("0.10"), reason="jam"))

    invoice = await reports.on_invoice(ctx, InvoiceQuery(account="physics"))
    assert invoice.account == "shared:physics"
    assert [(x.kind, x.user, x.amount, x.comment) for x in invoice.lines] == [
        ("charge", "ann", D("0.40"), "grant 4711"),
        ("refund", "ann", D("-0.10"), "jam"),
    ]
    assert (invoice.charged, invoice.refunded, invoice.total) == (D("0.40"), D("0.10"), D("0.30"))
    assert sum(x.amount for x in invoice.lines) == invoice.total
    assert invoice.closing_balance == await ctx.store.balance("shared:physics") == D("-0.30")
    one = await reports.on_invoice(ctx, InvoiceQuery(account="physics", limit=1))
    assert (len(one.lines), one.truncated, one.total) == (1, True, D("0.30"))
    unknown = await reports.on_invoice(ctx, InvoiceQuery(account="nowhere"))
    assert isinstance(unknown, ErrorReply) and "nowhere" in unknown.error


async def test_a_user_is_deleted_only_with_nothing_left_and_then_prints_no_more(ctx):
    await users.on_add_user(ctx, AddUser(login="ann", restricted=False))
    held = priced("ann", "0.30")
    await jobs.on_job_priced(ctx, held)  # held on a balance of 0.00 (unrestricted)
    busy = await users.on_delete_user(ctx, DeleteUser(login="ann"))
    assert isinstance(busy, ErrorReply) and "1 job(s) held" in busy.error
    await jobs.on_job_printed(ctx, printed(held))
    owes = await users.on_delete_user(ctx, DeleteUser(login="ann"))
    assert isinstance(owes, ErrorReply) and "balance of -0.30" in owes.error
    await money.on_adjust(ctx, Adjust(key="a", account="ann", amount=D("0.30"), reason="paid"))
    ctx.emitted.clear()

    deleted = await users.on_delete_user(ctx, DeleteUser(login="ann"))
    again = await users.on_delete_user(ctx, DeleteUser(login="ann"))
    assert (deleted.already, again.already, again.deleted_at) == (False, True, deleted.deleted_at)
    assert [m.login for m in ctx.messages(UserDisabled)] == ["ann"]  # signed out, once

    late = priced("ann", "0.10")
    await jobs.on_job_priced(ctx, late)
    [denied] = ctx.messages(JobDenied)
    assert denied.job_id == late.job_id and "deleted" in denied.reason
    enable = await users.on_set_user(ctx, SetUser(login="ann", enabled=True))
    assert isinstance(enable, ErrorReply) and "deleted" in enable.error
    assert (await users.on_list_users(ctx, ListUsers())).users == []
    # Their history stays in the reports.
    report = await reports.on_report(ctx, UsageReportQuery(by="user"))
    assert [(r.key, r.jobs, r.amount) for r in report.lines] == [("ann", 1, D("0.30"))]


async def test_no_money_is_paid_into_a_deleted_users_account_but_it_can_be_emptied(ctx):
    await users.on_add_user(ctx, AddUser(login="ann", restricted=False))
    await accounts.on_add_account(ctx, AddAccount(name="physics"))
    charged = priced("ann", "0.30")
    await jobs.on_job_priced(ctx, charged)
    await jobs.on_job_printed(ctx, printed(charged))
    await money.on_adjust(ctx, Adjust(key="paid", account="ann", amount=D("0.30"), reason="x"))
    topped = await money.on_topup(ctx, TopUp(key="before", account="ann", amount=D("1.00")))
    assert not isinstance(topped, ErrorReply)
    await money.on_adjust(ctx, Adjust(key="out", account="ann", amount=D("-1.00"), reason="x"))
    assert not isinstance(await users.on_delete_user(ctx, DeleteUser(login="ann")), ErrorReply)

    for refused in (
        await money.on_topup(ctx, TopUp(key="t", account="ann", amount=D("5.00"))),
        await money.on_adjust(ctx, Adjust(key="a", account="ann", amount=D("1"), reason="x")),
        await money.on_transfer(
            ctx, Transfer(key="x", from_account="physics", to_account="ann", amount=D("1"))
        ),
    ):
        assert isinstance(refused, ErrorReply) and "ann was deleted" in refused.error
    assert await ctx.store.balance("personal:ann") == 0
    # The top-up made before she was deleted, sent again, answers as it did then.
    again = await money.on_topup(ctx, TopUp(key="before", account="ann", amount=D("1.00")))
    assert not isinstance(again, ErrorReply) and again.id == topped.id
    # A refund of her job still reaches her account, and can be paid out from it.
    refund = Refund(key="r", job_id=charged.job_id, amount=D("0.30"), reason="smudged")
    assert not isinstance(await money.on_refund(ctx, refund), ErrorReply)
    out = Adjust(key="o", account="ann", amount=D("-0.30"), reason="paid out")
    assert not isinstance(await money.on_adjust(ctx, out), ErrorReply)
    assert await ctx.store.balance("personal:ann") == 0


async def test_deleting_nobody_is_refused_with_the_login(ctx):
    reply = await users.on_delete_user(ctx, DeleteUser(login="ghost"))
    assert isinstance(reply, ErrorReply) and "'ghost'" in reply.error
