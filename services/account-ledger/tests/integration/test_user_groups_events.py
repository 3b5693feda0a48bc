"""The ledger tells other services a user's groups (pricing's colour policy uses them)."""

from __future__ import annotations

import asyncio

from platen.account_ledger.handlers import users
from platen.account_ledger.store import Store
from platen.events.accounts import AddUser, SetUser


async def test_groups_are_published_when_a_user_is_added_and_when_they_are_set(ledger):
    await ledger.run(users.on_add_user, AddUser(login="alice", groups=["staff"]))
    # Adding the same user again changes nothing, so says nothing.
    await ledger.run(users.on_add_user, AddUser(login="alice", groups=["other"]))
    await ledger.run(users.on_set_user, SetUser(login="alice", restricted=False))
    await ledger.run(users.on_set_user, SetUser(login="alice", groups=["staff", "lab"]))
    sent = await ledger.emitted("user.groups_set")
    assert [(e.login, e.groups, e.revision) for e in sent] == [
        ("alice", ["staff"], 1),
        ("alice", ["staff", "lab"], 2),
    ]


async def test_concurrent_group_changes_of_one_user_leave_one_of_them_not_a_mix(ledger):
    """Two administrators set alice's groups at once. Each change takes her row's lock
    before replacing her memberships, so the second waits for the first: she ends with the
    groups of the one that committed last, and the changes are numbered in that order
    (pricing and notification keep the announcement with the higher revision)."""
    await ledger.run(users.on_add_user, AddUser(login="alice", groups=["staff"]))
    first = await ledger.pool.acquire()
    second = await ledger.pool.acquire()
    try:
        tx1, tx2 = first.transaction(), second.transaction()
        await tx1.start()
        await tx2.start()
        await Store(first).set_groups("alice", ["lab"])
        # The second change waits on the first's lock until that one commits.
        waiting = asyncio.create_task(Store(second).set_groups("alice", ["office"]))
        await asyncio.sleep(0.3)
        assert not waiting.done()
        await tx1.commit()
        await asyncio.wait_for(waiting, timeout=30)
        await tx2.commit()
    finally:
        await ledger.pool.release(first)
        await ledger.pool.release(second)
    members = await ledger.fetch("SELECT group_name FROM group_members WHERE login = 'alice'")
    assert [r["group_name"] for r in members] == ["office"]
    # Numbered in the order they committed: adding her was 1, "lab" 2, "office" 3.
    assert await ledger.fetchval("SELECT groups_revision FROM users WHERE login = 'alice'") == 3
