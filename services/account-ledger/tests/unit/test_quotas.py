"""Periodic quotas: the periods and amounts (domain), and giving them through the handlers
with an in-memory store and no broker."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest
from pydantic import ValidationError

from platen.account_ledger import domain
from platen.account_ledger.domain import Account, Period, Quota
from platen.account_ledger.handlers import jobs, quotas, users
from platen.events.accounts import AddUser, BalanceChanged, SetUser
from platen.events.quotas import ListQuotas, RemoveQuota, RunQuotas, SetQuota
from platen.events.system import ErrorReply
from platen.messaging.fakes import FakeContext

from ..builders import priced, printed
from .fakes import FakeStore

DAY = date(2026, 12, 1)  # a Tuesday, in ISO week 49


@pytest.fixture
def ctx() -> FakeContext:
    return FakeContext(store=FakeStore(), producer="account-ledger")


def quota(**kw) -> Quota:
    return Quota(**{"group": "staff", "amount": D("5.00"), "period": Period.WEEK, **kw})


def account(balance: str, held: str = "0") -> Account:
    return Account(id="personal:a", kind="personal", name="a", balance=D(balance), held=D(held))


# ----------------------------------------------------------------- domain


def test_each_period_has_one_key_for_every_day_in_it():
    assert quota(period=Period.DAY).period_of(DAY) == "2026-12-01"
    week = quota(period=Period.WEEK)
    assert week.period_of(date(2026, 11, 30)) == week.period_of(date(2026, 12, 6)) == "2026-W49"
    assert week.period_of(date(2026, 12, 7)) == "2026-W50"
    assert week.period_of(date(2027, 1, 1)) == "2026-W53"  # the ISO year, not the calendar's
    month = quota(period=Period.MONTH)
    assert month.period_of(DAY) == month.period_of(date(2026, 12, 31)) == "2026-12"
    terms = quota(period=Period.TERM, terms=(date(2026, 9, 1), date(2027, 1, 11)))
    assert terms.period_of(date(2026, 8, 31)) is None  # before the first term
    assert terms.period_of(DAY) == "term from 2026-09-01"
    assert terms.period_of(date(2027, 3, 1)) == "term from 2027-01-11"


def test_a_quota_adds_caps_or_resets():
    assert quota().credit(account("12.00")) == D("5.00")
    capped = quota(cap=D("20.00"))
    assert capped.credit(account("12.00")) == D("5.00")
    assert capped.credit(account("17.50")) == D("2.50")  # up to the cap, no further
    assert capped.credit(account("25.00")) == D("0")  # above it already: nothing taken
    assert capped.credit(account("-3.00")) == D("5.00")
    reset = quota(reset=True)
    assert reset.credit(account("1.25")) == D("3.75")
    assert reset.credit(account("8.00")) == D("-3.00")  # unspent credit taken back
    assert reset.credit(account("-2.00")) == D("7.00")
    # Never so much taken back that the account could not cover what it holds for jobs.
    assert reset.credit(account("8.00", held="6.00")) == D("0")


def test_the_contract_refuses_a_quota_that_cannot_mean_anything():
    with pytest.raises(ValidationError, match="not both"):
        SetQuota(group="staff", amount="5.00", period="week", cap="20.00", reset=True)
    with pytest.raises(ValidationError, match="below the amount"):
        SetQuota(group="staff", amount="5.00", period="week", cap="4.00")
    with pytest.raises(ValidationError, match="term period only"):
        SetQuota(group="staff", amount="5.00", period="term")
    with pytest.raises(ValidationError, match="term period only"):
        SetQuota(group="staff", amount="5.00", period="week", terms=[DAY])
    with pytest.raises(ValidationError):
        SetQuota(group="staff", amount="0", period="week")


# ----------------------------------------------------------------- handlers


async def members(ctx, *people: tuple[str, str]) -> None:
    for login, balance in people:
        await users.on_add_user(
            ctx, AddUser(login=login, initial_balance=D(balance), groups=["staff"])
        )


async def test_a_weekly_capped_quota_run_twice_in_one_week_adds_once(ctx):
    await members(ctx, ("ann", "0"), ("bea", "18.00"))
    await users.on_add_user(ctx, AddUser(login="cid", groups=["other"]))
    await quotas.on_set_quota(
        ctx, SetQuota(group="staff", amount=D("5.00"), period="week", cap=D("20.00"))
    )
    first = await quotas.on_run_quotas(ctx, RunQuotas(day=DAY))
    [run] = first.runs
    assert (run.period, run.given, run.users, run.total) == ("2026-W49", True, 2, D("7.00"))
    # Later the same week, from any trigger: nothing more.
    again = await quotas.on_run_quotas(ctx, RunQuotas(day=date(2026, 12, 6)))
    assert [(r.period, r.given, r.users) for r in again.runs] == [("2026-W49", False, 0)]
    balances = [await ctx.store.balance(f"personal:{u}") for u in ["ann", "bea", "cid"]]
    assert balances == [D("5.00"), D("20.00"), D("0")]
    given = [t for t in ctx.store.transactions if t.kind == "quota"]
    assert [t.description for t in given] == ["quota for 2026-W49 (group staff)"] * 2
    assert {e[0] for t in given for e in t.entries} == {
        "personal:ann",
        "personal:bea",
        domain.FUNDING,
    }
    # The next week is a new period.
    week50 = await quotas.on_run_quotas(ctx, RunQuotas(day=date(2026, 12, 7)))
    assert [(r.period, r.given, r.total) for r in week50.runs] == [("2026-W50", True, D("5.00"))]
    assert await ctx.store.balance("personal:ann") == D("10.00")


async def test_a_quota_announces_each_new_balance_and_skips_disabled_members(ctx):
    await members(ctx, ("dan", "0"), ("eve", "0"))
    await users.on_set_user(ctx, SetUser(login="eve", enabled=False))
    await quotas.on_set_quota(ctx, SetQuota(group="staff", amount=D("2.00"), period="day"))
    before = len(ctx.messages(BalanceChanged))
    await quotas.on_run_quotas(ctx, RunQuotas(day=DAY))
    changed = ctx.messages(BalanceChanged)[before:]
    assert [(m.account, m.balance) for m in changed] == [("personal:dan", D("2.00"))]
    assert await ctx.store.balance("personal:eve") == D("0")


async def test_a_reset_quota_takes_back_unspent_credit_but_leaves_holds_covered(ctx):
    await members(ctx, ("fay", "9.00"), ("gus", "9.00"))
    job = priced("gus", "8.00")
    await jobs.on_job_priced(ctx, job)  # holds 8.00 of gus's 9.00
    await quotas.on_set_quota(
        ctx, SetQuota(group="staff", amount=D("5.00"), period="month", reset=True)
    )
    await quotas.on_run_quotas(ctx, RunQuotas(day=DAY))
    assert await ctx.store.balance("personal:fay") == D("5.00")
    assert await ctx.store.balance("personal:gus") == D("9.00")  # untouched: its hold stands
    await jobs.on_job_printed(ctx, printed(job))
    assert await ctx.store.balance("personal:gus") == D("1.00")


async def test_quotas_are_listed_replaced_and_removed(ctx):
    set_ = await quotas.on_set_quota(
        ctx,
        SetQuota(
            group="year-1",
            amount=D("10.00"),
            period="term",
            terms=[date(2027, 1, 11), date(2026, 9, 1)],
        ),
    )
    assert set_.quota.terms == [date(2026, 9, 1), date(2027, 1, 11)]
    assert set_.quota.last_period is None
    await quotas.on_run_quotas(ctx, RunQuotas(group="year-1", day=DAY))
    [listed] = (await quotas.on_list_quotas(ctx, ListQuotas())).quotas
    assert (listed.group, listed.last_period) == ("year-1", "term from 2026-09-01")
    replaced = await quotas.on_set_quota(
        ctx, SetQuota(group="year-1", amount=D("3.00"), period="week")
    )
    assert (replaced.quota.amount, replaced.quota.period) == (D("3.00"), "week")
    removed = await quotas.on_remove_quota(ctx, RemoveQuota(group="year-1"))
    assert removed.quotas == []
    again = await quotas.on_remove_quota(ctx, RemoveQuota(group="year-1"))
    assert isinstance(again, ErrorReply) and "has no quota" in again.error
    unknown = await quotas.on_run_quotas(ctx, RunQuotas(group="nobody"))
    assert isinstance(unknown, ErrorReply) and "has no quota" in unknown.error


async def test_a_term_quota_before_its_first_term_gives_nothing(ctx):
    await members(ctx, ("hal", "0"))
    await quotas.on_set_quota(
        ctx, SetQuota(group="staff", amount=D("4.00"), period="term", terms=[date(2027, 1, 11)])
    )
    assert (await quotas.on_run_quotas(ctx, RunQuotas(day=DAY))).runs == []
    assert ctx.store.quota_runs == {}
    assert await ctx.store.balance("personal:hal") == D("0")
