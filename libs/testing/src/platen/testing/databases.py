"""A service's schema, migrated, on a test's own PostgreSQL database: what every service's
integration tests stand on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg

from platen.db import apply_migrations, create_pool, load_migrations
from platen.messaging.service import MESSAGING_MIGRATIONS


@asynccontextmanager
async def service_pool(
    database_url: str, service: str, schema: str, migrations: Path, **pool_options
) -> AsyncIterator[asyncpg.Pool]:
    """A pool on `schema`, with the shared messaging tables and `service`'s migrations
    applied, as the service would at start-up; closed afterwards."""
    pool = await create_pool(database_url, schema, **pool_options)
    try:
        async with pool.acquire() as conn:
            await apply_migrations(
                conn,
                schema,
                load_migrations("messaging", MESSAGING_MIGRATIONS)
                + load_migrations(service, migrations),
            )
        yield pool
    finally:
        await pool.close()
