"""The inbox is pruned of rows older than its retention, in batches; recent rows stay."""

from datetime import timedelta

from platen.messaging import inbox, retention


async def test_old_inbox_rows_are_pruned_and_recent_ones_kept(pool, monkeypatch):
    monkeypatch.setattr(retention, "BATCH", 7)  # several batches
    async with pool.acquire() as conn:
        for i in range(20):
            assert await inbox.claim(conn, "q", f"old-{i}")
        await conn.execute("UPDATE svc.inbox SET processed_at = now() - interval '15 days'")
        for i in range(3):
            assert await inbox.claim(conn, "q", f"new-{i}")
        assert await retention.prune_inbox(conn, timedelta(days=14)) == 20
        left = await conn.fetch("SELECT message_id FROM svc.inbox ORDER BY message_id")
        assert [r["message_id"] for r in left] == ["new-0", "new-1", "new-2"]
        # A recent message is still recognised as a redelivery.
        assert await inbox.claim(conn, "q", "new-0") is False
        assert await retention.prune_inbox(conn, timedelta(days=14)) == 0
