"""Pruning: no table grows for ever. One mechanism, each service naming its own tables.

Every service prunes, hourly (`PLATEN_PRUNE_INTERVAL_SECONDS`), two kinds of rows:

- its **inbox** (one row per message it applied), kept `PLATEN_INBOX_RETENTION_DAYS` (14):
  an inbox row exists to recognise a *redelivery*, a message the broker hands over again
  because its acknowledgement was lost (the service or its connection died between commit
  and ack). That happens within minutes, or when the service comes back from an outage,
  far inside 14 days. Should a message somehow come back later still, the effects guard
  themselves too: the ledger's postings carry keys derived from the job
  (`job:<id>:charge`), and a job's state machine refuses a transition it already made.
- its **history**, kept `PLATEN_HISTORY_RETENTION_DAYS` (90): the rows its `Store.prune
  (older_than)` deletes, which are only rows nothing waits on any more (a finished job, a
  closed prompt, an answered question, an old wrong PIN). What is still needed (an open
  job, a pending hold, an unanswered prompt) and the ledger's journal (transactions and
  entries: postings are never pruned) are never touched.

The outbox needs no pruning: a row is deleted in the transaction that records it sent.
A service whose store has no `prune` prunes its inbox only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import structlog

from platen.db import checked_transaction

log = structlog.get_logger(__name__)

BATCH = 5000  # rows per DELETE: short transactions, no long lock on a busy table

# Makes a service's store over a connection; pruning uses its `prune(older_than)`.
StoreFactory = Callable[[asyncpg.Connection], Any]


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


async def prune_history(
    conn: asyncpg.Connection, store: StoreFactory | None, keep: timedelta
) -> dict[str, int]:
    """Ask the service's store to delete what it no longer needs from before `keep` ago,
    in one transaction; returns rows deleted per table."""
    prune: Callable[[datetime], Awaitable[dict[str, int]]] | None = getattr(store, "prune", None)
    if store is None or prune is None:
        return {}
    async with checked_transaction(conn):
        return await store(conn).prune(datetime.now(UTC) - keep)


async def prune(
    conn: asyncpg.Connection,
    store: StoreFactory | None,
    *,
    inbox: timedelta,
    history: timedelta,
) -> dict[str, int]:
    """One pruning pass: the inbox, then the service's own tables."""
    return {"inbox": await prune_inbox(conn, inbox), **await prune_history(conn, store, history)}


async def run(
    pool: asyncpg.Pool,
    store: StoreFactory | None,
    *,
    inbox: timedelta,
    history: timedelta,
    interval: float = 3600.0,
) -> None:
    """Prune now and then every `interval` seconds, for as long as the service runs."""
    while True:
        try:
            async with pool.acquire() as conn:
                pruned = await prune(conn, store, inbox=inbox, history=history)
        except Exception as exc:  # the task must outlive any one pass
            # The database away or busy, say: the next pass takes what this one left.
            log.warning("pruning failed, retried next pass", error=repr(exc))
        else:
            if rows := {table: n for table, n in pruned.items() if n}:
                log.info(
                    "pruned",
                    rows=rows,
                    inbox_days=inbox.total_seconds() / 86400,
                    history_days=history.total_seconds() / 86400,
                )
        await asyncio.sleep(interval)
