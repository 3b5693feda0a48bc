"""job-capture's schema on a real PostgreSQL, for the tests of its handlers and deadlines."""

from __future__ import annotations

from pathlib import Path

import pytest

from platen.testing.databases import service_pool

MIGRATIONS = Path(__file__).parents[1] / "src/platen/job_capture/migrations"


@pytest.fixture
async def pool(database_url):
    async with service_pool(database_url, "job-capture", "job_capture", MIGRATIONS) as pool:
        yield pool
