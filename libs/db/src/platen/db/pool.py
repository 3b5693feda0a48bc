"""asyncpg pools confined to one service's schema."""

from __future__ import annotations

import asyncio
import json
import time

import asyncpg
import structlog

log = structlog.get_logger(__name__)


async def _init_connection(conn: asyncpg.Connection) -> None:
    for typename in ("json", "jsonb"):
        await conn.set_type_codec(
            typename, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )


async def _no_session_reset(conn: asyncpg.Connection) -> None:
    """What a connection's release does beyond asyncpg's own rollback of an open
    transaction: nothing. asyncpg's default also sends `RESET ALL; UNLISTEN *; CLOSE ALL;
    SELECT pg_advisory_unlock_all()`, one more round trip for every transaction of every
    message. Nothing Platen runs on a pooled connection leaves session state behind: it
    sets only `SET LOCAL`, takes only transaction-scoped advisory locks, listens to nothing
    and keeps no cursor past its transaction. An open transaction, even one begun by hand,
    is still rolled back, its settings and locks with it (libs/db/tests/test_pool_db.py)."""


async def create_pool(
    dsn: str, schema: str, *, min_size: int = 1, max_size: int = 10
) -> asyncpg.Pool:
    """A pool whose connections see only `schema` (and pg_catalog) by default."""
    return await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        reset=_no_session_reset,
        server_settings={"search_path": schema, "application_name": f"platen-{schema}"},
    )


async def connect_with_retry(
    dsn: str, schema: str, *, timeout: float = 60.0, **kwargs: int
) -> asyncpg.Pool:
    """Create a pool, waiting for the database to come up (a service may start first)."""
    deadline = time.monotonic() + timeout
    delay = 0.2
    while True:
        try:
            return await create_pool(dsn, schema, **kwargs)
        except (OSError, asyncpg.CannotConnectNowError, asyncpg.PostgresConnectionError) as exc:
            if time.monotonic() > deadline:
                raise
            log.warning("database not reachable, retrying", error=str(exc), delay=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
