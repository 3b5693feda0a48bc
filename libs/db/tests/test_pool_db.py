"""A pooled connection handed back: what is left of its session (real PostgreSQL)."""

import asyncpg
import pytest

from platen.db import create_pool


@pytest.fixture
async def pool(database_url):
    # One connection, so the next acquirer gets the very session the last one used.
    pool = await create_pool(database_url, "public", min_size=1, max_size=1)
    yield pool
    await pool.close()


async def test_a_release_costs_no_reset_round_trip(pool):
    sent = []
    async with pool.acquire() as conn:
        conn.add_query_logger(lambda record: sent.append(record.query))
        async with conn.transaction():
            await conn.execute("SELECT 1")
    async with pool.acquire() as conn:
        await conn.execute("SELECT 2")
    assert not [q for q in sent if "RESET" in q or "UNLISTEN" in q or "unlock_all" in q]
    assert any("SELECT 2" in q for q in sent)  # the logger saw what came after


async def test_an_open_transaction_is_rolled_back_with_its_locks_and_settings(pool, database_url):
    # As notification's identity lock does: BEGIN by hand, SET LOCAL, a transaction-scoped
    # advisory lock, and the holder cancelled before its ROLLBACK.
    async with pool.acquire() as conn:
        await conn.execute("BEGIN")
        await conn.execute("SET LOCAL lock_timeout = 1234")
        await conn.execute("SELECT pg_advisory_xact_lock(4242)")
        await conn.execute("CREATE TABLE left_behind (id int)")
    other = await asyncpg.connect(database_url)
    try:
        assert await other.fetchval("SELECT pg_try_advisory_xact_lock(4242)")
        async with pool.acquire() as conn:
            assert not conn.is_in_transaction()
            assert await conn.fetchval("SHOW lock_timeout") == "0"
            assert await conn.fetchval("SELECT to_regclass('left_behind')") is None
    finally:
        await other.close()


async def test_a_failed_transaction_leaves_the_connection_usable(pool):
    with pytest.raises(asyncpg.DivisionByZeroError):
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT 1 / 0")
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT 1") == 1
        assert not conn.is_in_transaction()
