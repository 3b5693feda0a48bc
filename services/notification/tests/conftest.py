"""The notification schema on a real PostgreSQL, for its integration tests (the unit
tests never ask for it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from platen.db import apply_migrations, create_pool, load_migrations
from platen.messaging.service import MESSAGING_MIGRATIONS

MIGRATIONS = Path(__file__).parents[1] / "src/platen/notification/migrations"


@pytest.fixture
async def pool(database_url):
    pool = await create_pool(database_url, "notification")
    async with pool.acquire() as conn:
        await apply_migrations(
            conn,
            "notification",
            load_migrations("messaging", MESSAGING_MIGRATIONS)
            + load_migrations("notification", MIGRATIONS),
        )
    yield pool
    await pool.close()
