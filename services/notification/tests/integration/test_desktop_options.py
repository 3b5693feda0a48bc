"""Client options in a real PostgreSQL: the store's statements, and the newest notice a
desktop gets describing every change, however concurrent the changes were."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from platen.events.accounts import UserGroupsSet
from platen.events.client_options import SetClientOption
from platen.events.registry import decode
from platen.messaging.handling import apply_in_transaction
from platen.notification import desktop_options
from platen.notification.store import Store

T0 = datetime(2026, 12, 1, 12, tzinfo=UTC)


async def test_client_options_round_trip(pool):
    async with pool.acquire() as conn, conn.transaction():
        store = Store(conn)
        await store.lock_client_options()
        await store.set_client_option("", "title", "Site")
        await store.set_client_option("", "title", "Site 2")  # set again: replaced
        await store.set_client_option("staff", "hide_balance", "true")
        assert await store.client_options() == (
            {"title": "Site 2"},
            {"staff": {"hide_balance": "true"}},
        )
        assert await store.unset_client_option("staff", "hide_balance") is True
        assert await store.unset_client_option("staff", "hide_balance") is False
        assert await store.client_options() == ({"title": "Site 2"}, {})
        first = await store.next_options_revision()
        assert await store.next_options_revision() > first


async def test_user_groups_keep_the_newest_announcement(pool):
    async with pool.acquire() as conn, conn.transaction():
        store = Store(conn)
        await store.add_desktop_identity("alice")
        await store.add_desktop_identity("bob")
        assert await store.set_client_user_groups("alice", ["staff", "lab", "staff"], 2)
        assert not await store.set_client_user_groups("alice", [], 1)
        assert await store.client_user_groups("alice") == ["lab", "staff"]
        assert await store.client_user_groups("nobody") == []
        await store.set_client_user_groups("bob", ["staff"], 1)
        assert await store.enabled_members("staff") == ["alice", "bob"]
        identity = await store.desktop_identity("bob")
        identity.revoke()
        await store.save_desktop_identity(identity)
        assert await store.enabled_members("staff") == ["alice"]
        assert await store.enabled_members("lab") == ["alice"]


async def test_the_newest_notice_holds_every_concurrent_change(pool):
    """Twelve administrators set twelve different options at once, while alice's groups
    are announced: whatever order the transactions commit in, the notice alice's desktop
    keeps (the highest revision) shows all of them."""
    async with pool.acquire() as conn:
        await Store(conn).add_desktop_identity("alice")
    changes = [SetClientOption(key="title", value=f"T{i}", group=f"g{i}") for i in range(12)]

    groups = UserGroupsSet(login="alice", groups=[f"g{i}" for i in range(12)], revision=1)
    await asyncio.gather(
        apply_in_transaction(
            pool, "notification", desktop_options.on_user_groups_set, groups, store=Store
        ),
        *(
            apply_in_transaction(pool, "notification", desktop_options.on_set, c, store=Store)
            for c in changes
        ),
    )
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT * FROM outbox WHERE message_type = 'desktop.client_options' ORDER BY id"
        )
    notices = [decode(r["message_type"], r["schema_version"], r["body"]) for r in rows]
    assert notices, "alice was sent no options"
    revisions = [n.revision for n in notices]
    assert len(set(revisions)) == len(revisions)
    newest = max(notices, key=lambda n: n.revision)
    # Every group set a title; the group first by name (g0) wins.
    assert newest.options == {"title": "T0"}
    async with pool.acquire() as conn:
        site, by_group = await Store(conn).client_options()
    assert len(by_group) == 12 and site == {}
