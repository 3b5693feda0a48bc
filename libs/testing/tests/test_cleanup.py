"""What a test made is removed after it, in the background, and all of it before the
servers stop; a removal that fails is reported, not lost."""

from __future__ import annotations

import dataclasses
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from platen.localstack.servers import free_port
from platen.testing.isolation import Cleanup, create_database, drop_database


async def _databases(admin_dsn: str) -> set[str]:
    conn = await asyncpg.connect(admin_dsn)
    try:
        return {r["datname"] for r in await conn.fetch("SELECT datname FROM pg_database")}
    finally:
        await conn.close()


async def _removed_by(remover: Cleanup, infra, vhosts) -> str:
    """A vhost and a database made, given to `remover` and the removals finished: the
    vhost is gone; the database's name is returned."""
    vhost, _ = vhosts.create()
    database, _ = await create_database(infra.database_url)
    remover.vhost(vhost)
    remover.database(database)
    assert remover.finish() == []
    assert vhosts.http.get(f"/api/vhosts/{vhost}").status_code == 404
    return database


async def test_a_tests_vhost_and_database_are_gone_once_the_cleanup_finishes(infra, vhosts):
    database = await _removed_by(Cleanup(infra), infra, vhosts)
    assert database not in await _databases(infra.database_url)


async def test_on_a_server_deleted_whole_at_the_end_a_tests_database_is_left(infra, vhosts):
    """A throwaway server's databases go with it; its vhosts are still deleted (a vhost's
    quorum queues keep running in the broker until then)."""
    database = await _removed_by(Cleanup(infra, keep_databases=True), infra, vhosts)
    try:
        assert database in await _databases(infra.database_url)
    finally:
        await drop_database(infra.database_url, database)


def test_a_removal_that_fails_is_reported_at_the_end(infra):
    parts = urlsplit(infra.database_url)  # the same server, on a port nobody listens on
    netloc = parts.netloc.rpartition("@")[0] + f"@127.0.0.1:{free_port()}"
    nowhere = urlunsplit(parts._replace(netloc=netloc))
    remover = Cleanup(dataclasses.replace(infra, database_url=nowhere))
    remover.database("test_never_made")
    [failure] = remover.finish()
    assert failure.startswith("database test_never_made: ")


# integration, by hand: the pytest it runs starts a broker and a database server of its own
# (the `vhost` and `database_url` of its first test), which a unit test may not.
@pytest.mark.integration
def test_a_unit_test_after_a_server_test_waits_for_its_removals(tmp_path):
    """The unit tier's guard refuses network sockets to every thread while a unit test
    runs, the cleanup thread's too: the removals asked for before it are done first."""
    import subprocess
    import sys
    import textwrap

    (tmp_path / "conftest.py").write_text(
        'pytest_plugins = ["platen.testing.fixtures", "platen.testing.tiers"]\n'
    )
    (tmp_path / "test_order.py").write_text(
        textwrap.dedent(
            """
            import time
            import pytest

            def test_a_makes_a_vhost(vhost, database_url):
                pass

            @pytest.mark.unit
            def test_b_is_a_long_unit_test():
                time.sleep(4)  # longer than the cleanup's three tries take

            def test_c_nothing_was_left(cleanup, vhosts):
                cleanup.wait()
                assert cleanup.failures == []
                names = {v["name"] for v in vhosts.http.get("/api/vhosts").json()}
                assert not [n for n in names if n.startswith("test-")]
            """
        )
    )
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts="]
    args += ["-o", "asyncio_mode=auto", "-o", "asyncio_default_fixture_loop_scope=session"]
    out = subprocess.run(
        [*args, str(tmp_path)], cwd=tmp_path, capture_output=True, text=True, timeout=240
    )
    assert out.returncode == 0, out.stdout[-3000:]
