"""Numbered plain-SQL migrations, applied at start-up under an advisory lock.

Files are named `NNN_description.sql` and applied in order, each in its own transaction.
Several components can keep migrations in one schema (the messaging outbox and inbox live
beside each service's own tables), so every applied file is recorded as (component, number).
Several processes starting at once take turns on the lock; the later ones find nothing to do.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import structlog

log = structlog.get_logger(__name__)

_NAME = re.compile(r"^(\d{3,})_([a-z0-9_]+)\.sql$")


class MigrationsPending(RuntimeError):
    """The schema needs migrations that the signed-in role has no right to apply."""


@dataclass(frozen=True)
class Migration:
    component: str
    number: int
    name: str
    sql: str


def load_migrations(component: str, folder: Path) -> list[Migration]:
    found = []
    for path in sorted(folder.iterdir()):
        if path.suffix != ".sql":
            continue
        m = _NAME.match(path.name)
        if m is None:
            raise ValueError(f"{path}: migration files are named NNN_description.sql")
        found.append(Migration(component, int(m.group(1)), m.group(2), path.read_text()))
    numbers = [m.number for m in found]
    if len(set(numbers)) != len(numbers):
        raise ValueError(f"{folder}: two migrations share a number")
    # By number, not by name: "1000_x" sorts before "999_y" as text.
    return sorted(found, key=lambda m: m.number)


def _lock_key(schema: str) -> int:
    # A stable 31-bit key per schema; crc32 is stable across processes (hash() is not).
    return zlib.crc32(f"platen-migrations:{schema}".encode()) & 0x7FFFFFFF


def _quote(identifier: str) -> str:
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", identifier):
        raise ValueError(f"unsafe schema name {identifier!r}")
    return f'"{identifier}"'


async def _applied(conn: asyncpg.Connection, schema: str) -> set[tuple[str, int]]:
    if not await conn.fetchval(
        "SELECT to_regclass($1) IS NOT NULL", f"{_quote(schema)}.schema_migrations"
    ):
        return set()
    rows = await conn.fetch(f"SELECT component, number FROM {_quote(schema)}.schema_migrations")
    return {(r["component"], r["number"]) for r in rows}


async def _create_schema(conn: asyncpg.Connection, schema: str) -> None:
    q = _quote(schema)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", schema):
            await conn.execute(f"CREATE SCHEMA {q}")
        await conn.execute(
            f"""CREATE TABLE IF NOT EXISTS {q}.schema_migrations (
                component text NOT NULL,
                number integer NOT NULL,
                name text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (component, number))"""
        )
    except asyncpg.InsufficientPrivilegeError as exc:
        raise MigrationsPending(
            f"schema {schema} has migrations to apply, which this role may not: run them "
            "as the schema's owner first (python -m <service module> migrate)"
        ) from exc


async def apply_migrations(
    conn: asyncpg.Connection, schema: str, migrations: list[Migration]
) -> list[Migration]:
    """Apply the migrations not yet applied to `schema`; returns those applied now."""
    applied_now: list[Migration] = []
    key = _lock_key(schema)
    await conn.execute("SELECT pg_advisory_lock($1)", key)
    try:
        q = _quote(schema)
        done = await _applied(conn, schema)
        pending = [m for m in migrations if (m.component, m.number) not in done]
        if pending:
            # Only now the rights to create: a service signed in as its own role (which may
            # not create anything, platen.db.roles) starts on a schema migrated before.
            await _create_schema(conn, schema)
        for mig in pending:
            async with conn.transaction():
                await conn.execute(f"SET LOCAL search_path TO {q}")
                await conn.execute(mig.sql)
                await conn.execute(
                    f"INSERT INTO {q}.schema_migrations (component, number, name) "
                    "VALUES ($1, $2, $3)",
                    mig.component,
                    mig.number,
                    mig.name,
                )
            log.info("migration applied", schema=schema, component=mig.component, name=mig.name)
            applied_now.append(mig)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", key)
    return applied_now
