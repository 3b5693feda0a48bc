"""Periodic quotas end to end: platenctl over the broker, the ledger as a process giving
them by command and by its own schedule."""

from __future__ import annotations

import asyncio
import json
from datetime import date, timedelta
from decimal import Decimal as D

import pytest

from tests.e2e.helpers import eventually


async def test_a_weekly_capped_quota_run_twice_for_one_week_is_given_once(system):
    # The ledger's schedule ran once at start (no quota yet) and waits 10 minutes now, so
    # only these commands give anything here.
    system.ctl("user", "add", "ivy", "--balance", "18.00", "--group", "staff")
    system.ctl("user", "add", "jon", "--group", "staff")
    system.ctl("user", "add", "kim", "--group", "lab")
    out = system.ctl("quota", "set", "staff", "5.00", "--period", "week", "--cap", "20.00")
    assert "add 5.00 every week, up to 20.00" in out.stdout
    first = system.ctl("quota", "run", "--group", "staff", "--day", "2026-11-23")
    assert "2026-W48: 7.00 given to 2 users" in first.stdout
    again = system.ctl("quota", "run", "--day", "2026-11-29")
    assert "2026-W48: given already" in again.stdout
    assert D(system.user_json("ivy")["balance"]) == D("20.00")  # capped
    assert D(system.user_json("jon")["balance"]) == D("5.00")
    assert D(system.user_json("kim")["balance"]) == D("0")  # not in the group
    statement = system.ctl("statement", "jon").stdout
    assert "quota for 2026-W48 (group staff)" in statement
    [listed] = json.loads(system.ctl("quota", "list", "--json").stdout)
    assert (listed["group"], listed["last_period"], listed["cap"]) == ("staff", "2026-W48", "20.00")

    system.ctl("quota", "remove", "staff")
    assert "no quotas" in system.ctl("quota", "list").stdout
    assert "no quota has a period now" in system.ctl("quota", "run").stdout
    unknown = system.ctl("quota", "run", "--group", "staff", check=False)
    assert unknown.returncode == 1 and "has no quota" in unknown.stderr
    bad = system.ctl("quota", "set", "lab", "5", "--period", "week", "--cap", "4", check=False)
    assert bad.returncode == 1 and "below the amount" in bad.stderr
    assert D(system.user_json("jon")["balance"]) == D("5.00")  # what was given stays


@pytest.mark.service_env(PLATEN_QUOTA_INTERVAL_SECONDS="1")
async def test_the_ledger_gives_the_current_period_by_itself_once(system):
    # Three ledgers, as a site running replicas has: each runs the schedule every second,
    # so they give the same period together, and it must be given once.
    replicas = [system.services.start_replica("account-ledger", n) for n in (2, 3)]

    async def started():
        return all("service started" in system.services.log(r) for r in replicas)

    assert await eventually(started, timeout=60)
    system.ctl("user", "add", "kim", "--group", "lab")
    system.ctl("quota", "set", "lab", "2.50", "--period", "day")

    async def kim() -> D:
        return D(system.user_json("kim")["balance"])

    async def given():
        return await kim() == D("2.50")

    assert await eventually(given, timeout=30)
    await asyncio.sleep(3)  # several more rounds of the schedule
    assert await kim() == D("2.50")
    today = date.today().isoformat()
    [listed] = json.loads(system.ctl("quota", "list", "--json").stdout)
    assert listed["last_period"] == today
    ran = json.loads(system.ctl("quota", "run", "--json").stdout)
    assert [(r["period"], r["given"]) for r in ran] == [(today, False)]
    tomorrow = (date.today() + timedelta(days=1)).isoformat()
    ran = json.loads(system.ctl("quota", "run", "--day", tomorrow, "--json").stdout)
    assert [(r["period"], r["given"], r["users"]) for r in ran] == [(tomorrow, True, 1)]
    assert await kim() == D("5.00")
