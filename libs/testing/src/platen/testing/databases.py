"""A service's schema, migrated, on a test's own PostgreSQL database: what every service's
integration tests stand on."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg

from platen.db import apply_migrations, create_pool, load_migrations
from platen.db.roles import provision, with_login
from platen.messaging.service import MESSAGING_MIGRATIONS


@asynccontextmanager
async def service_pool(
    database_url: str,
    service: str,
    schema: str,
    migrations: Path,
    *,
    own_role: bool = False,
    **pool_options,
) -> AsyncIterator[asyncpg.Pool]:
    """A pool on `schema`, with the shared messaging tables and `service`'s migrations
    applied, as the service would at start-up; closed afterwards.

    `own_role`: as in production, the migrations run as the schema's owner and the pool
    signs in as the service's own role (platen.db.roles), not as `database_url`'s user.
    """
    all_migrations = load_migrations("messaging", MESSAGING_MIGRATIONS) + load_migrations(
        service, migrations
    )
    if own_role:
        password = secrets.token_urlsafe(24)
        admin = await asyncpg.connect(database_url)
        try:
            roles = await provision(admin, schema, all_migrations, password)
        finally:
            await admin.close()
        database_url = with_login(database_url, roles.runtime, password)
    pool = await create_pool(database_url, schema, **pool_options)
    try:
        async with pool.acquire() as conn:
            await apply_migrations(conn, schema, all_migrations)
        yield pool
    finally:
        await pool.close()
