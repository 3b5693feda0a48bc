"""The notification schema on a real PostgreSQL, for its integration tests (the unit
tests never ask for it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from platen.testing.databases import service_pool

MIGRATIONS = Path(__file__).parents[1] / "src/platen/notification/migrations"


@pytest.fixture
async def pool(database_url):
    async with service_pool(database_url, "notification", "notification", MIGRATIONS) as pool:
        yield pool
