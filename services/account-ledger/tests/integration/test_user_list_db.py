"""`ledger.user.list` against a real PostgreSQL: the Store's one query, as the service
runs it (the ledger's own role, a read-only query)."""

from __future__ import annotations

from decimal import Decimal as D

from platen.account_ledger.handlers import jobs, users
from platen.account_ledger.store import Store
from platen.events.accounts import AddUser, ListUsers, SetUser

from ..builders import priced


async def test_users_are_listed_by_login_with_balance_holds_groups_and_state(ledger):
    for login, balance, groups in [
        ("mia", "4.00", ["staff"]),
        ("ada", "2.50", ["staff", "physics"]),
        ("zed", "0", []),
    ]:
        await ledger.run(
            users.on_add_user, AddUser(login=login, initial_balance=D(balance), groups=groups)
        )
    await ledger.run(jobs.on_job_priced, priced("ada", "1.20"))
    await ledger.run(users.on_set_user, SetUser(login="zed", enabled=False, overdraft_limit=D("5")))

    listed = await ledger.run(users.on_list_users, ListUsers())
    assert [u.login for u in listed.users] == ["ada", "mia", "zed"]
    ada, mia, zed = listed.users
    assert (ada.balance, ada.held, ada.available) == (D("2.50"), D("1.20"), D("1.30"))
    assert ada.groups == ["physics", "staff"] and ada.enabled and ada.restricted
    assert (mia.held, mia.available, mia.groups) == (D("0.00"), D("4.00"), ["staff"])
    assert not zed.enabled and zed.groups == [] and zed.overdraft_limit == D("5.00")

    staff = await ledger.run(users.on_list_users, ListUsers(group="staff", limit=1))
    assert [u.login for u in staff.users] == ["ada"] and staff.truncated


async def test_the_store_query_filters_by_group_and_stops_at_the_limit(ledger):
    for login in ["b", "a", "c"]:
        await ledger.run(users.on_add_user, AddUser(login=login, groups=["g"]))
    await ledger.run(users.on_add_user, AddUser(login="d"))
    async with ledger.pool.acquire() as conn:
        store = Store(conn)
        assert [r["login"] for r in await store.user_summaries("g", 2)] == ["a", "b"]
        assert [r["login"] for r in await store.user_summaries(None, 10)] == ["a", "b", "c", "d"]
        assert await store.user_summaries("none", 10) == []
