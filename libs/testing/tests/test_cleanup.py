"""What a test made is removed after it, in the background, and all of it before the
servers stop; a removal that fails is reported, not lost."""

from __future__ import annotations

import dataclasses
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from platen.localstack.servers import free_port
from platen.testing.isolation import Cleanup, create_database


async def _databases(admin_dsn: str) -> set[str]:
    conn = await asyncpg.connect(admin_dsn)
    try:
        return {r["datname"] for r in await conn.fetch("SELECT datname FROM pg_database")}
    finally:
        await conn.close()


async def test_a_tests_vhost_and_database_are_gone_once_the_cleanup_finishes(infra, vhosts):
    remover = Cleanup(infra)
    vhost, _ = vhosts.create()
    database, _ = await create_database(infra.database_url)
    remover.vhost(vhost)
    remover.database(database)
    assert remover.finish() == []
    assert vhosts.http.get(f"/api/vhosts/{vhost}").status_code == 404
    assert database not in await _databases(infra.database_url)


def test_a_removal_that_fails_is_reported_at_the_end(infra):
    parts = urlsplit(infra.database_url)  # the same server, on a port nobody listens on
    netloc = parts.netloc.rpartition("@")[0] + f"@127.0.0.1:{free_port()}"
    nowhere = urlunsplit(parts._replace(netloc=netloc))
    remover = Cleanup(dataclasses.replace(infra, database_url=nowhere))
    remover.database("test_never_made")
    [failure] = remover.finish()
    assert failure.startswith("database test_never_made: ")
