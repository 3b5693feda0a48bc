"""`ledger.user.list` over the in-memory store: order, group filter, limit, money."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from platen.account_ledger.handlers import jobs, users
from platen.events.accounts import AddUser, ListUsers, SetUser
from platen.messaging.fakes import FakeContext

from ..builders import priced
from .fakes import FakeStore


@pytest.fixture
async def ctx() -> FakeContext:
    ctx = FakeContext(store=FakeStore(), producer="account-ledger")
    for login, balance, groups in [
        ("mia", "4.00", ["staff"]),
        ("ada", "2.50", ["staff", "physics"]),
        ("zed", "0", ["students"]),
    ]:
        await users.on_add_user(
            ctx, AddUser(login=login, initial_balance=D(balance), groups=groups)
        )
    return ctx


async def test_users_are_listed_by_login_with_their_money_and_state(ctx):
    await jobs.on_job_priced(ctx, priced("ada", "1.20"))
    await users.on_set_user(ctx, SetUser(login="zed", enabled=False, restricted=False))
    listed = await users.on_list_users(ctx, ListUsers())
    assert [u.login for u in listed.users] == ["ada", "mia", "zed"]
    ada, mia, zed = listed.users
    assert (ada.balance, ada.held, ada.available) == (D("2.50"), D("1.20"), D("1.30"))
    assert ada.groups == ["physics", "staff"] and ada.restricted and ada.enabled
    assert (mia.balance, mia.held, mia.available) == (D("4.00"), D("0"), D("4.00"))
    assert not zed.enabled and not zed.restricted
    assert not listed.truncated


async def test_a_group_lists_only_its_members(ctx):
    listed = await users.on_list_users(ctx, ListUsers(group="staff"))
    assert [u.login for u in listed.users] == ["ada", "mia"]
    assert (await users.on_list_users(ctx, ListUsers(group="nobody"))).users == []


async def test_a_list_cut_at_its_limit_says_so(ctx):
    cut = await users.on_list_users(ctx, ListUsers(limit=2))
    assert [u.login for u in cut.users] == ["ada", "mia"] and cut.truncated
    whole = await users.on_list_users(ctx, ListUsers(limit=3))
    assert len(whole.users) == 3 and not whole.truncated
