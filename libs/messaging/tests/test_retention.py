"""The inbox is pruned of rows older than its retention, in batches; recent rows stay."""

from datetime import timedelta

from platen.messaging import inbox
from platen.operations import retention


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


class NotesStore:
    """A service's store that keeps notes and prunes those older than it is told."""

    def __init__(self, conn):
        self.conn = conn

    async def prune(self, older_than):
        assert self.conn.is_in_transaction()  # one transaction for the service's tables
        gone = await self.conn.execute("DELETE FROM svc.notes WHERE at < $1", older_than)
        return {"notes": int(gone.split()[-1])}


class NoPruneStore:
    def __init__(self, conn):
        self.conn = conn


async def test_one_pass_prunes_the_inbox_and_the_tables_the_service_names(pool):
    async with pool.acquire() as conn:
        await conn.execute("CREATE TABLE svc.notes (at timestamptz NOT NULL)")
        await conn.execute(
            "INSERT INTO svc.notes VALUES (now() - interval '100 days'), (now() - interval '1 day')"
        )
        assert await inbox.claim(conn, "q", "old")
        await conn.execute("UPDATE svc.inbox SET processed_at = now() - interval '15 days'")
        keep = {"inbox": timedelta(days=14), "history": timedelta(days=90)}
        assert await retention.prune(conn, NotesStore, **keep) == {"inbox": 1, "notes": 1}
        assert await conn.fetchval("SELECT count(*) FROM svc.notes") == 1
        # A service whose store names no tables (pricing) prunes its inbox only.
        assert await retention.prune(conn, NoPruneStore, **keep) == {"inbox": 0}
        assert await retention.prune(conn, None, **keep) == {"inbox": 0}
