"""Periodic quotas against a real PostgreSQL: a period is given once per group however
many runs race for it (as replicas triggered together do), the ledger's own schedule gives
it by itself, and the database keeps the rules a quota row must follow."""

from __future__ import annotations

import asyncio
from datetime import date
from decimal import Decimal as D

import asyncpg
import pytest

from platen.account_ledger import quota_schedule
from platen.account_ledger.handlers import quotas, users
from platen.events.accounts import AddUser
from platen.events.quotas import RunQuotas, SetQuota

DAY = date(2026, 12, 1)


async def staff(ledger, *logins: str) -> None:
    for login in logins:
        await ledger.run(users.on_add_user, AddUser(login=login, groups=["staff"]))


async def quota_postings(ledger) -> list:
    return await ledger.fetch(
        "SELECT t.op_key, t.description, e.account_id, e.amount FROM transactions t "
        "JOIN entries e ON e.transaction_id = t.id "
        "WHERE t.kind = 'quota' AND e.account_id LIKE 'personal:%' ORDER BY t.op_key"
    )


async def test_three_runs_together_give_a_weekly_capped_quota_once(ledger):
    await staff(ledger, "ann", "bob", "cy")
    await ledger.run(
        quotas.on_set_quota,
        SetQuota(group="staff", amount=D("5.00"), period="week", cap=D("20.00")),
    )
    replies = await ledger.run_all(quotas.on_run_quotas, [RunQuotas(day=DAY)] * 3)
    given = [r.runs[0].given for r in replies]
    assert sorted(given) == [False, False, True]
    rows = await quota_postings(ledger)
    assert [(r["account_id"], r["amount"]) for r in rows] == [
        ("personal:ann", D("5.00")),
        ("personal:bob", D("5.00")),
        ("personal:cy", D("5.00")),
    ]
    assert {r["description"] for r in rows} == {"quota for 2026-W49 (group staff)"}
    # And twice more the same week, from the schedule this time: nothing.
    assert await quota_schedule.run_once(ledger.pool, "account-ledger", date(2026, 12, 4)) == 0
    assert len(await quota_postings(ledger)) == 3
    [run] = await ledger.fetch("SELECT * FROM quota_runs")
    assert (run["period"], run["users"], run["total"]) == ("2026-W49", 3, D("15.00"))
    # Each new balance announced once (the desktops show it), none for the runs that lost.
    announced = [
        (m.account, m.balance)
        for m in await ledger.emitted("account.balance_changed")
        if m.balance != 0
    ]
    assert sorted(announced) == [(f"personal:{u}", D("5.00")) for u in ("ann", "bob", "cy")]


async def test_the_schedule_gives_each_group_its_period_by_itself(ledger):
    await staff(ledger, "dee")
    await ledger.run(users.on_add_user, AddUser(login="eli", groups=["lab"]))
    await ledger.run(quotas.on_set_quota, SetQuota(group="staff", amount=D("1.50"), period="day"))
    await ledger.run(quotas.on_set_quota, SetQuota(group="lab", amount=D("2.00"), period="month"))
    assert await quota_schedule.run_once(ledger.pool, "account-ledger", DAY) == 2
    assert await quota_schedule.run_once(ledger.pool, "account-ledger", DAY) == 0
    assert await quota_schedule.run_once(ledger.pool, "account-ledger", date(2026, 12, 2)) == 1
    balances = {
        r["account_id"]: r["balance"]
        for r in await ledger.fetch(
            "SELECT id AS account_id, balance FROM accounts WHERE kind = 'personal'"
        )
    }
    assert balances == {"personal:dee": D("3.00"), "personal:eli": D("2.00")}


async def test_the_database_refuses_a_quota_row_that_breaks_its_rules(ledger):
    await staff(ledger, "fin")
    bad = [
        "INSERT INTO quotas (group_name, amount, period) VALUES ('staff', 0, 'week')",
        "INSERT INTO quotas (group_name, amount, period, cap) VALUES ('staff', 5, 'week', 4)",
        "INSERT INTO quotas (group_name, amount, period, cap, reset) "
        "VALUES ('staff', 5, 'week', 9, true)",
        "INSERT INTO quotas (group_name, amount, period) VALUES ('staff', 5, 'term')",
        "INSERT INTO quotas (group_name, amount, period) VALUES ('staff', 5, 'year')",
    ]
    async with ledger.pool.acquire() as conn:
        for sql in bad:
            with pytest.raises(asyncpg.CheckViolationError):
                await conn.execute(sql)


async def test_a_quota_posting_cannot_be_doubled_even_by_hand(ledger):
    """The per-member key stands behind the period's claim: a second posting under the
    same key (a claim row deleted by hand, say) posts nothing."""
    await staff(ledger, "gil")
    await ledger.run(quotas.on_set_quota, SetQuota(group="staff", amount=D("4.00"), period="day"))
    await ledger.run(quotas.on_run_quotas, RunQuotas(day=DAY))
    await ledger.fetch("DELETE FROM quota_runs")
    again = await ledger.run(quotas.on_run_quotas, RunQuotas(day=DAY))
    assert (again.runs[0].given, again.runs[0].users) == (True, 0)
    assert [r["amount"] for r in await quota_postings(ledger)] == [D("4.00")]


async def test_concurrent_schedules_and_commands_on_many_groups_stay_single(ledger):
    for g in range(5):
        await ledger.run(users.on_add_user, AddUser(login=f"u{g}", groups=[f"g{g}"]))
        await ledger.run(
            quotas.on_set_quota, SetQuota(group=f"g{g}", amount=D("1.00"), period="week")
        )
    await asyncio.gather(
        *(quota_schedule.run_once(ledger.pool, "account-ledger", DAY) for _ in range(3)),
        *(ledger.run(quotas.on_run_quotas, RunQuotas(day=DAY)) for _ in range(3)),
    )
    rows = await quota_postings(ledger)
    assert sorted(r["account_id"] for r in rows) == [f"personal:u{g}" for g in range(5)]
