"""A test run's PostgreSQL never waits for the disk, and still loses no commit when the
server is killed: what the outage tests stop and kill it for."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import asyncpg
import pytest

from platen.localstack.servers import PG_BIN, THROWAWAY, LocalPostgres

# integration, by hand: it starts a PostgreSQL of its own, with no fixture saying so.
pytestmark = pytest.mark.integration


async def _settings(dsn: str) -> dict[str, str]:
    conn = await asyncpg.connect(dsn)
    try:
        names = ("fsync", "full_page_writes", "synchronous_commit")
        return {name: await conn.fetchval(f"SHOW {name}") for name in names}
    finally:
        await conn.close()


async def _commit_then_read(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CREATE TABLE kept (n int)")
        await conn.execute("INSERT INTO kept VALUES (1), (2), (3)")
    finally:
        await conn.close()


async def _rows(dsn: str) -> list[int]:
    conn = await asyncpg.connect(dsn)
    try:
        return [r["n"] for r in await conn.fetch("SELECT n FROM kept ORDER BY n")]
    finally:
        await conn.close()


def test_a_throwaway_server_skips_the_disk_and_a_killed_one_keeps_its_commits():
    base = Path(tempfile.mkdtemp(prefix="platen-throwaway-"))
    base.chmod(0o755)  # the postgres user must reach its data folder
    pg = LocalPostgres(base / "postgres", settings=THROWAWAY)
    try:
        pg.start()
        assert asyncio.run(_settings(pg.admin_dsn)) == {
            "fsync": "off",
            "full_page_writes": "off",
            "synchronous_commit": "on",
        }
        asyncio.run(_commit_then_read(pg.admin_dsn))
        # Stopped as a crash stops it (`immediate`: every process quits at once, no
        # shutdown checkpoint): the commits are in the WAL the server handed to the
        # operating system, and the restart replays them.
        argv = [str(PG_BIN / "pg_ctl"), "stop", "-D", str(pg.folder / "data"), "-m", "immediate"]
        if os.geteuid() == 0:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        subprocess.run(argv, check=True, capture_output=True, timeout=60)
        assert pg.proc is not None
        pg.proc.wait(30)
        pg.start()
        assert asyncio.run(_rows(pg.admin_dsn)) == [1, 2, 3]
    finally:
        pg.stop()
        shutil.rmtree(base, ignore_errors=True)
