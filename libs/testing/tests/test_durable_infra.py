"""A benchmark's PostgreSQL waits for the disk as a deployment's does; a test run's does
not (`provide(durable=...)`, local binaries tier). Without this, the benchmarks of
commits (the hot account, the job chain) would report figures no site can reach."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from platen.testing import infra

# integration, by hand: each case starts a broker and a PostgreSQL of its own.
pytestmark = pytest.mark.integration


async def _fsync(dsn: str) -> str:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval("SHOW fsync")
    finally:
        await conn.close()


@pytest.mark.parametrize(("durable", "fsync"), [(True, "on"), (False, "off")])
def test_a_benchmarks_database_waits_for_the_disk_and_a_tests_does_not(durable, fsync):
    with infra._from_local(durable=durable) as provided:
        assert asyncio.run(_fsync(provided.database_url)) == fsync
        # Started for this run and deleted whole at its end (`Cleanup` leaves databases).
        assert provided.throwaway
