"""The ledger's handlers against a real PostgreSQL, without the broker.

`ledger.run(handler, message)` runs one handler in its own transaction, as the service
would for one delivery; what it emits stays in the outbox table for the test to read.
After every test, the ledger's own invariant check must find nothing wrong.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import pytest

from platen.account_ledger import store
from platen.account_ledger.store import Store
from platen.events.registry import decode
from platen.messaging.batching import apply_batch_in_transaction
from platen.messaging.handling import apply_in_transaction
from platen.testing.databases import service_pool

MIGRATIONS = Path(__file__).parents[2] / "src/platen/account_ledger/migrations"


class Ledger:
    def __init__(self, pool, admin_url: str) -> None:
        self.pool = pool
        self.admin_url = admin_url

    @asynccontextmanager
    async def as_superuser(self):
        conn = await asyncpg.connect(self.admin_url, server_settings={"search_path": "ledger"})
        try:
            yield conn
        finally:
            await conn.close()

    @asynccontextmanager
    async def as_owner(self):
        """A connection acting as the ledger tables' owner (what migrations run as)."""
        async with self.as_superuser() as conn:
            owner = await conn.fetchval(
                "SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'ledger'"
            )
            await conn.execute(f"SET ROLE {owner}")
            yield conn

    async def run(self, handler, message):
        return await apply_in_transaction(
            self.pool, "account-ledger", handler, message, store=Store
        )

    async def run_batch(self, handler, messages):
        """The messages in ONE transaction, in order, as the service's batch path applies
        the deliveries of one batch (`platen.messaging.batching`)."""
        return await apply_batch_in_transaction(
            self.pool, "account-ledger", [(handler, m) for m in messages], store=Store
        )

    async def run_all(self, handler, messages):
        return await asyncio.gather(*(self.run(handler, m) for m in messages))

    async def emitted(self, message_type: str) -> list:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT message_type, schema_version, body FROM outbox WHERE message_type = $1 "
                "ORDER BY id",
                message_type,
            )
        return [decode(r["message_type"], r["schema_version"], r["body"]) for r in rows]

    async def fetch(self, sql: str, *args):
        async with self.pool.acquire() as conn:
            return await conn.fetch(sql, *args)

    async def fetchval(self, sql: str, *args):
        async with self.pool.acquire() as conn:
            return await conn.fetchval(sql, *args)


@pytest.fixture
async def ledger(database_url):
    async with service_pool(
        database_url, "account-ledger", "ledger", MIGRATIONS, own_role=True, min_size=2, max_size=60
    ) as pool:
        yield Ledger(pool, database_url)
        async with pool.acquire() as conn:
            assert await store.verify(conn) == []
