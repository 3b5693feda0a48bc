"""`checked_transaction` against a real PostgreSQL: a commit is a commit, and a transaction
PostgreSQL rolls back at its COMMIT says so."""

import contextlib

import pytest

from platen.db import RolledBack, checked_transaction, create_pool


@pytest.fixture
async def pool(database_url):
    pool = await create_pool(database_url, "public", min_size=1, max_size=1)
    async with pool.acquire() as conn:
        await conn.execute("CREATE TABLE IF NOT EXISTS kept (n int)")
        await conn.execute("DELETE FROM kept")
    yield pool
    await pool.close()


async def _kept(pool) -> list[int]:
    async with pool.acquire() as conn:
        return [r["n"] for r in await conn.fetch("SELECT n FROM kept ORDER BY n")]


async def test_the_block_is_committed(pool):
    async with pool.acquire() as conn, checked_transaction(conn):
        await conn.execute("INSERT INTO kept VALUES (1)")
    assert await _kept(pool) == [1]


async def test_a_failed_statement_whose_error_was_swallowed_is_not_a_commit(pool):
    # asyncpg's own `transaction()` would end this block as if all were well.
    with pytest.raises(RolledBack, match="ROLLBACK"):
        async with pool.acquire() as conn, checked_transaction(conn):
            await conn.execute("INSERT INTO kept VALUES (2)")
            with contextlib.suppress(Exception):
                await conn.execute("SELECT 1/0")
    assert await _kept(pool) == []


async def test_an_error_in_the_block_rolls_back_and_is_raised(pool):
    with pytest.raises(ZeroDivisionError):
        async with pool.acquire() as conn, checked_transaction(conn):
            await conn.execute("INSERT INTO kept VALUES (3)")
            1 / 0  # noqa: B018
    async with pool.acquire() as conn:
        assert not conn.is_in_transaction()
    assert await _kept(pool) == []
