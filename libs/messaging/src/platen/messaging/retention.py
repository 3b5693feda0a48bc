"""Pruning the inbox: it must not grow for ever (one row per message a service applied).

An inbox row exists to recognise a *redelivery*: a message the broker hands over again
because its acknowledgement was lost (the service or its connection died between commit
and ack). That happens within minutes, or when the service comes back from an outage, so
rows are kept for `PLATEN_INBOX_RETENTION_DAYS` (14 by default), far longer than any
redelivery, and deleted after. Should a message somehow come back later still, the
effects guard themselves too: the ledger's postings carry keys derived from the job
(`job:<id>:charge`), and a job's state machine refuses a transition it already made.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

import asyncpg
import structlog

log = structlog.get_logger(__name__)

BATCH = 5000  # rows per DELETE: short transactions, no long lock on a busy table


async def prune_inbox(conn: asyncpg.Connection, keep: timedelta) -> int:
    """Delete the inbox rows older than `keep`; returns how many went."""
    total = 0
    while True:
        deleted = await conn.fetchval(
            """WITH old AS (
                   SELECT consumer, message_id FROM inbox
                   WHERE processed_at < now() - $1::interval LIMIT $2)
               , gone AS (
                   DELETE FROM inbox i USING old
                   WHERE i.consumer = old.consumer AND i.message_id = old.message_id
                   RETURNING 1)
               SELECT count(*) FROM gone""",
            keep,
            BATCH,
        )
        total += deleted
        if deleted < BATCH:
            return total


async def run(pool: asyncpg.Pool, keep: timedelta, interval: float = 3600.0) -> None:
    """Prune now and then every `interval` seconds, for as long as the service runs."""
    while True:
        with contextlib.suppress(Exception):
            async with pool.acquire() as conn:
                pruned = await prune_inbox(conn, keep)
            if pruned:
                log.info("inbox pruned", rows=pruned, older_than_days=keep.days)
        await asyncio.sleep(interval)
