"""The ledger tells other services a user's groups (pricing's colour policy uses them)."""

from __future__ import annotations

from platen.account_ledger.handlers import users
from platen.events.accounts import AddUser, SetUser


async def test_groups_are_published_when_a_user_is_added_and_when_they_are_set(ledger):
    await ledger.run(users.on_add_user, AddUser(login="alice", groups=["staff"]))
    # Adding the same user again changes nothing, so says nothing.
    await ledger.run(users.on_add_user, AddUser(login="alice", groups=["other"]))
    await ledger.run(users.on_set_user, SetUser(login="alice", restricted=False))
    await ledger.run(users.on_set_user, SetUser(login="alice", groups=["staff", "lab"]))
    sent = await ledger.emitted("user.groups_set")
    assert [(e.login, e.groups) for e in sent] == [
        ("alice", ["staff"]),
        ("alice", ["staff", "lab"]),
    ]
