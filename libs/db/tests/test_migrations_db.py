"""Migrations against a real PostgreSQL."""

import asyncio

import asyncpg
import pytest

from platen.db import Migration, apply_migrations, load_migrations

CREATE = Migration("demo", 1, "things", "CREATE TABLE things (id integer PRIMARY KEY);")
ALTER = Migration("demo", 2, "more", "ALTER TABLE things ADD COLUMN name text;")


async def test_applies_in_order_once(database_url):
    conn = await asyncpg.connect(database_url)
    try:
        first = await apply_migrations(conn, "demo", [CREATE, ALTER])
        again = await apply_migrations(conn, "demo", [CREATE, ALTER])
        assert [m.number for m in first] == [1, 2]
        assert again == []
        cols = await conn.fetch(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = 'demo' AND table_name = 'things' ORDER BY ordinal_position"
        )
        assert [c["column_name"] for c in cols] == ["id", "name"]
    finally:
        await conn.close()


async def test_concurrent_starts_apply_each_migration_once(database_url):
    # Five processes starting at once: without the advisory lock, CREATE TABLE would run
    # several times and fail.
    conns = [await asyncpg.connect(database_url) for _ in range(5)]
    try:
        results = await asyncio.gather(
            *(apply_migrations(c, "demo", [CREATE, ALTER]) for c in conns)
        )
        assert sorted(len(r) for r in results) == [0, 0, 0, 0, 2]
        count = await conns[0].fetchval("SELECT count(*) FROM demo.schema_migrations")
        assert count == 2
    finally:
        for c in conns:
            await c.close()


async def test_failed_migration_is_rolled_back_and_not_recorded(database_url):
    broken = Migration("demo", 2, "broken", "ALTER TABLE things ADD COLUMN x nosuchtype;")
    conn = await asyncpg.connect(database_url)
    try:
        with pytest.raises(asyncpg.PostgresError):
            await apply_migrations(conn, "demo", [CREATE, broken])
        recorded = await conn.fetch("SELECT number FROM demo.schema_migrations")
        assert [r["number"] for r in recorded] == [1]
        # The lock was released: a fixed migration applies.
        assert len(await apply_migrations(conn, "demo", [CREATE, ALTER])) == 1
    finally:
        await conn.close()


def test_migration_files_must_be_numbered(tmp_path):
    (tmp_path / "001_ok.sql").write_text("SELECT 1;")
    assert [m.name for m in load_migrations("x", tmp_path)] == ["ok"]
    (tmp_path / "two.sql").write_text("SELECT 2;")
    with pytest.raises(ValueError, match="NNN_description"):
        load_migrations("x", tmp_path)


def test_migrations_are_ordered_by_number_not_by_name(tmp_path):
    for name in ("1000_d", "002_b", "999_c", "001_a"):
        (tmp_path / f"{name}.sql").write_text("SELECT 1;")
    loaded = load_migrations("x", tmp_path)
    assert [m.number for m in loaded] == [1, 2, 999, 1000]
    assert [m.name for m in loaded] == ["a", "b", "c", "d"]


def test_two_migrations_may_not_share_a_number(tmp_path):
    (tmp_path / "001_a.sql").write_text("SELECT 1;")
    (tmp_path / "001_b.sql").write_text("SELECT 1;")
    with pytest.raises(ValueError, match="share a number"):
        load_migrations("x", tmp_path)
