"""A fresh RabbitMQ vhost and a fresh PostgreSQL database for each test."""

from __future__ import annotations

import asyncio
import queue
import threading
import time
import uuid
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg
import httpx

from platen.testing.infra import Infra


def _credentials(amqp_url: str) -> tuple[str, str]:
    parts = urlsplit(amqp_url)
    return parts.username or "guest", parts.password or "guest"


def with_vhost(amqp_url: str, vhost: str) -> str:
    parts = urlsplit(amqp_url)
    return urlunsplit(parts._replace(path="/" + quote(vhost, safe="")))


def with_database(dsn: str, database: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/" + database))


class Vhosts:
    def __init__(self, infra: Infra) -> None:
        self.infra = infra
        self.http = httpx.Client(
            base_url=infra.management_url, auth=_credentials(infra.amqp_url), timeout=30
        )

    def create(self) -> tuple[str, str]:
        name = f"test-{uuid.uuid4().hex[:12]}"
        user = _credentials(self.infra.amqp_url)[0]
        self.http.put(f"/api/vhosts/{name}").raise_for_status()
        self.http.put(
            f"/api/permissions/{name}/{user}",
            json={"configure": ".*", "write": ".*", "read": ".*"},
        ).raise_for_status()
        return name, with_vhost(self.infra.amqp_url, name)

    def delete(self, name: str) -> None:
        self.http.delete(f"/api/vhosts/{name}")

    def queue(self, vhost: str, queue: str) -> dict:
        r = self.http.get(f"/api/queues/{vhost}/{queue}")
        r.raise_for_status()
        return r.json()

    def close_connections(self, vhost: str, named: str | None = None) -> int:
        """Close every client connection to `vhost` (as a broker restart would), or only
        those whose client named them `named`; how many. (The management API lists a new
        connection a few seconds late: a caller that must close one asks again.)"""
        conns = self.http.get(f"/api/vhosts/{vhost}/connections").json()
        if named is not None:
            conns = [
                c
                for c in conns
                if (c.get("client_properties") or {}).get("connection_name") == named
            ]
        for c in conns:
            self.http.delete(f"/api/connections/{quote(c['name'], safe='')}")
        return len(conns)


async def create_database(admin_dsn: str, prefix: str = "test") -> tuple[str, str]:
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name, with_database(admin_dsn, name)


async def drop_database(admin_dsn: str, name: str) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        # The services' roles made for it (platen.db.roles names them after it) are the
        # server's, not the database's: they go too.
        roles = await conn.fetch(
            "SELECT rolname FROM pg_roles WHERE starts_with(rolname, $1)", f"{name}_"
        )
        for role in roles:
            await conn.execute(f'DROP ROLE IF EXISTS "{role["rolname"]}"')
    finally:
        await conn.close()


async def clone_database(admin_dsn: str, template: str, logins: list[str]) -> tuple[str, str]:
    """A fresh database copied from `template` (a migrated one: `SystemTemplate`), which
    only the roles `logins` (and superusers) may connect to, as `platen.db.roles.provision`
    leaves a database. A copy takes a fraction of a second where running every service's
    migrations takes seconds; the copy's schemas, tables and grants are the template's,
    but a database's CONNECT rights are not copied, so they are given here."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        await conn.execute(f'REVOKE ALL ON DATABASE "{name}" FROM PUBLIC')
        for login in logins:
            await conn.execute(f'GRANT CONNECT ON DATABASE "{name}" TO "{login}"')
    finally:
        await conn.close()
    return name, with_database(admin_dsn, name)


class Cleanup:
    """Removes what a finished test made (its vhost, its databases) on a thread of its own,
    while the next test runs. Deleting a vhost (its quorum queues) and dropping a database
    took 0.1 to 0.5 s each, in every test's teardown: time the worker waited on the
    servers (61.8 + 30.0 + 26.9 s of the last CI's teardowns, all workers summed). Nothing
    is reused: every vhost and database has a name of its own. `finish` waits for what is
    left, before the servers stop.

    `keep_databases`: leave the tests' databases where they are, on a server deleted whole
    when the run ends (`Infra.throwaway`). Dropping them cost the database server more than
    copying them: 60 copies of the migrated template and their drops took 11.6 s of
    PostgreSQL's CPU, 60 copies kept 4.6 s, and the copies themselves took longer between
    drops (143 to 233 ms a copy, against 55 to 90 kept) (docs/development.md)."""

    def __init__(self, infra: Infra, *, keep_databases: bool = False) -> None:
        self.infra = infra
        self.keep_databases = keep_databases
        self.failures: list[str] = []
        _running.add(self)
        self._vhosts = Vhosts(infra)  # used by the cleanup thread alone
        self._queue: queue.Queue[tuple[str, Callable[[], object]] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="platen-cleanup", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            what, remove = item
            for attempt in range(3):  # a test may have restarted the broker meanwhile
                try:
                    remove()
                    break
                except Exception as exc:  # the next test goes on; the run's end says it
                    if attempt == 2:
                        self.failures.append(f"{what}: {exc!r}")
                    time.sleep(1)
            self._queue.task_done()
        self._vhosts.http.close()

    def vhost(self, name: str) -> None:
        self._queue.put((f"vhost {name}", lambda: self._vhosts.delete(name)))

    def database(self, name: str) -> None:
        if self.keep_databases:
            return
        self._later(f"database {name}", lambda: drop_database(self.infra.database_url, name))

    def _later(self, what: str, remove: Callable[[], Coroutine[Any, Any, object]]) -> None:
        self._queue.put((what, lambda: asyncio.run(remove())))

    def wait(self) -> None:
        """Wait for every removal asked for so far (before removing what they depend on:
        the template the databases were copied from, whose roles own their objects)."""
        self._queue.join()

    def finish(self) -> list[str]:
        """Wait for every removal asked for; what failed."""
        _running.discard(self)
        self._queue.put(None)
        self._thread.join()
        return self.failures

    @classmethod
    def wait_for_all(cls) -> None:
        """Wait for every removal asked for so far in this process: before a unit test,
        under which no thread may open a network socket (`platen.testing.tiers`)."""
        for cleanup in list(_running):
            cleanup.wait()


# Every Cleanup of this process that has not finished, for `Cleanup.wait_for_all`.
_running: set[Cleanup] = set()
