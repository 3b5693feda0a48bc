"""job-capture's schema on a real PostgreSQL, for the tests of its handlers and deadlines."""

from __future__ import annotations

from pathlib import Path

import pytest

from platen.db import apply_migrations, create_pool, load_migrations
from platen.messaging.service import MESSAGING_MIGRATIONS

MIGRATIONS = Path(__file__).parents[1] / "src/platen/job_capture/migrations"


@pytest.fixture
async def pool(database_url):
    pool = await create_pool(database_url, "job_capture")
    async with pool.acquire() as conn:
        await apply_migrations(
            conn,
            "job_capture",
            load_migrations("messaging", MESSAGING_MIGRATIONS)
            + load_migrations("job-capture", MIGRATIONS),
        )
    yield pool
    await pool.close()
