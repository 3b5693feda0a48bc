"""The whole system, as real processes, on a fresh vhost and database per test."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aio_pika
import pytest

from platen.events.registry import decode
from platen.events.routing import desktop_queue
from platen.localstack.services import ServiceProcesses
from platen.testing.forkserver import ForkServer
from platen.testing.identities import (
    SHARED_USER_PREFIX,
    USER_PREFIX,
    Identities,
    VhostIdentities,
)
from platen.testing.isolation import Cleanup
from platen.testing.system_template import SystemTemplate
from platen.testing.system_template import system_template as migrated_template

CTL_MODULE = "platen.ctl"


class System:
    def __init__(
        self,
        services: ServiceProcesses,
        tmp: Path,
        ids: VhostIdentities,
        identities: Identities,
        vhost: str,
        forkserver: ForkServer,
    ) -> None:
        self.forkserver = forkserver
        self.services = services
        self.tmp = tmp
        self.database_url = services.database_url
        self.ids = ids
        self.identities = identities
        self.vhost = vhost
        self._print_servers: dict[str, str] = {}

    @property
    def amqp_url(self) -> str:
        """The test's own view of the broker (an administrator on this vhost): for
        looking at queues, never for a Platen program."""
        return self.services.amqp_url

    @property
    def admin_url(self) -> str:
        """What platenctl signs in with."""
        return self.ids.admin

    @property
    def print_server_url(self) -> str:
        """What a CUPS backend signs in with: print server `test`'s own identity."""
        return self.print_server("test")

    def print_server(self, name: str) -> str:
        """The URL print server `name` signs in with (its identity made on first use)."""
        if name not in self._print_servers:
            self._print_servers[name] = self.identities.print_server_url(
                self.vhost, name, self.ids.user_prefix
            )
        return self._print_servers[name]

    def broker_refusals(self, user: str) -> list[str]:
        """The broker's log lines about what it refused `user` on this test's vhost."""
        log = self.identities.infra.broker_log()
        return [
            line
            for line in log.splitlines()
            if "refused" in line and f"'{self.vhost}'" in line and f"user '{user}'" in line
        ]

    def desktop_url(self, login: str, password: str) -> str:
        return self.identities.desktop_url(self.vhost, login, password)

    def ctl(
        self, *args: str, check: bool = True, timeout: float = 90
    ) -> subprocess.CompletedProcess:
        env = {**os.environ, "PLATEN_AMQP_URL": self.admin_url}
        # `python -m platen.ctl ...`, forked from the fork server (no second of imports).
        out = self.forkserver.run(CTL_MODULE, list(args), env=env, timeout=timeout, cwd=self.tmp)
        if check and out.returncode != 0:
            raise AssertionError(
                f"platenctl {' '.join(args)} exited {out.returncode}:\n{out.stdout}\n{out.stderr}"
            )
        return out

    def user_json(self, login: str) -> dict:
        return json.loads(self.ctl("user", "show", login, "--json").stdout)

    def wait_ready(self) -> None:
        out = self.ctl("status", "--timeout", "60", check=False)
        if out.returncode != 0:
            logs = {n: self.services.log(n)[-3000:] for n in self.services.procs}
            raise AssertionError(f"services did not come up:\n{out.stdout}\n{logs}")

    async def desktop_messages(
        self, login: str, count: int = 1000, timeout: float = 60, until=None
    ) -> list:
        """Take messages off a user's desktop queue (as the client would): `count` of them,
        or up to the first for which `until(message)` is true."""
        got = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        conn = await aio_pika.connect(self.amqp_url)
        async with conn:
            q = await self._desktop_queue(conn, login, deadline)
            while len(got) < count and loop.time() < deadline:
                raw = await q.get(fail=False)
                if raw is None:
                    await asyncio.sleep(0.1)
                    continue
                await raw.ack()
                got.append(decode(raw.type, raw.headers["platen-schema-version"], raw.body))
                if until is not None and until(got[-1]):
                    break
        return got

    @staticmethod
    async def _desktop_queue(conn, login: str, deadline: float):
        """The user's desktop queue, waiting for the notification service to declare it
        (it does so when it sees `user.added`, which may still be on its way)."""
        loop = asyncio.get_running_loop()
        while True:
            ch = await conn.channel()
            try:
                return await ch.get_queue(desktop_queue(login))
            except aio_pika.exceptions.ChannelClosed:
                if loop.time() >= deadline:
                    raise
                await asyncio.sleep(0.2)


@pytest.fixture(scope="session")
def forkserver(tmp_path_factory) -> Iterator[ForkServer]:
    """This worker's fork server: the services and platenctl start without a second of
    imports each (platen.testing.forkserver)."""
    server = ForkServer(tmp_path_factory.mktemp("forkserver"))
    yield server
    server.close()


@pytest.fixture(scope="session")
def identities(infra) -> Identities:
    return Identities(infra)


@pytest.fixture(scope="session")
async def system_template(
    infra, forkserver: ForkServer, cleanup: Cleanup
) -> AsyncIterator[SystemTemplate]:
    """Every service's schema migrated once per worker, as an installer does; each system
    gets a copy (platen.testing.system_template)."""
    async with migrated_template(
        infra.database_url, forkserver.run, drop=not infra.throwaway
    ) as template:
        yield template
        cleanup.wait()  # the copies go first: the template's roles own their objects


@pytest.fixture
async def system_database(
    cleanup: Cleanup, system_template: SystemTemplate
) -> AsyncIterator[tuple[str, dict[str, str]]]:
    """This test's own copy of the migrated template: the superuser's URL on it, and the
    URL each service signs in with (its own role)."""
    name, url, services = await system_template.copy()
    yield url, services
    cleanup.database(name)


@pytest.fixture(scope="module")
async def module_system_database(
    cleanup: Cleanup, system_template: SystemTemplate
) -> AsyncIterator[tuple[str, dict[str, str]]]:
    """The copy of the template a module's shared system runs on (`shared_system`)."""
    name, url, services = await system_template.copy()
    yield url, services
    cleanup.database(name)


def _start_system(
    node: pytest.Item | pytest.Module,
    vhost: tuple[str, str],
    identities: Identities,
    database: tuple[str, dict[str, str]],
    tmp: Path,
    forkserver: ForkServer,
    extra: dict[str, str],
    user_prefix: str = USER_PREFIX,
) -> System:
    """The four services on `vhost` and `database`, each signed in as its own broker
    identity (over TLS when the test broker offers it), as in production; ready."""
    marker = node.get_closest_marker("service_env")
    vhost_name, amqp_url = vhost
    ids = identities.for_vhost(vhost_name, user_prefix)
    extra = {**(marker.kwargs if marker else {}), **extra}
    # Each management-API key to its one service only, as `make run` hands them out.
    own = {
        "notification": {"PLATEN_BROKER_MANAGEMENT_URL": ids.management_url},
        "job-capture": {"PLATEN_BROKER_MONITOR_URL": ids.monitor_url},
    }
    database_url, database_urls = database  # each service signs in as its own role
    services = ServiceProcesses(
        amqp_url,
        database_url,
        tmp / "logs",
        extra_env=extra,
        own_env=own,
        service_urls=ids.services,
        database_urls=database_urls,
        launcher=None if node.get_closest_marker("exec_services") else forkserver.popen,
    )
    services.start_all()
    sys_ = System(services, tmp, ids, identities, vhost_name, forkserver)
    try:
        sys_.wait_ready()
    except BaseException:
        services.stop_all()
        raise
    return sys_


def _verify_after(sys_: System) -> None:
    # Every test leaves a sound ledger (a test that stopped a service or the database
    # has brought it back by now); not checked after a failure, which says enough.
    out = sys_.ctl("ledger", "verify", check=False)
    if out.returncode != 0:
        pytest.fail(f"ledger verify after the test:\n{out.stdout}\n{out.stderr}")


# What a test of a `shared_system` module may not ask for: each would be the shared
# system's or would change it for the tests after (mark the test `own_system` instead).
_NOT_SHARED_FIXTURES = ("vhost", "amqp_url", "system_database", "extra_service_env")
_NOT_SHARED_MARKS = ("service_env", "exec_services")


def _shares(request) -> bool:
    node = request.node
    if node.get_closest_marker("shared_system") is None:
        return False
    if node.get_closest_marker("own_system") is not None:
        return False
    own = [m.name for m in node.own_markers if m.name in _NOT_SHARED_MARKS]
    needs = [n for n in _NOT_SHARED_FIXTURES if n in request.fixturenames]
    if own or needs:
        raise pytest.UsageError(
            f"{node.nodeid} is in a shared_system module but uses {', '.join(own + needs)}: "
            "mark it @pytest.mark.own_system"
        )
    return True


@pytest.fixture(scope="module")
def module_system(
    request,
    vhosts,
    cleanup: Cleanup,
    identities: Identities,
    module_system_database,
    tmp_path_factory,
    forkserver,
) -> Iterator[System]:
    """One running system for the tests of a `shared_system` module on this worker."""
    vhost = vhosts.create()
    try:
        tmp = tmp_path_factory.mktemp("shared-system")
        # Broker users of its own (issued once per worker, like the `test-` ones): an
        # `own_system` test runs meanwhile, and a print server it adds must not sign out
        # the shared system's print server of the same name.
        sys_ = _start_system(
            request.node,
            vhost,
            identities,
            module_system_database,
            tmp,
            forkserver,
            {},
            SHARED_USER_PREFIX,
        )
        try:
            yield sys_
        finally:
            sys_.services.stop_all()
    finally:
        cleanup.vhost(vhost[0])  # and with it every right its users had


@pytest.fixture
def system(
    request, identities: Identities, tmp_path: Path, forkserver: ForkServer
) -> Iterator[System]:
    """The four services on this test's vhost and database, each signed in as its own
    broker identity (over TLS when the test broker offers it), as in production.

    They are forked from the worker's fork server; `@pytest.mark.exec_services` starts
    them as fresh interpreters instead (for a test that reads their /proc environment).

    `@pytest.mark.service_env(NAME="value")` adds environment variables for the services,
    and so does a fixture `extra_service_env` the test asks for (a dict), before `system`.

    A module marked `pytestmark = pytest.mark.shared_system` shares one running system
    among its tests on a worker (docs/development.md, "A test that shares a system"):
    each test uses names of its own and looks only at what it made; a test of it that
    needs a system of its own is marked `@pytest.mark.own_system`. Without the mark, every
    test gets a fresh system, as always.
    """
    if _shares(request):
        shared = request.getfixturevalue("module_system")
        # The test's own view: its own folder (files it writes, platenctl's working
        # folder) and print server identities, on the module's services.
        sys_ = System(shared.services, tmp_path, shared.ids, identities, shared.vhost, forkserver)
        yield sys_
        _verify_after(sys_)
        return
    vhost = request.getfixturevalue("vhost")
    database = request.getfixturevalue("system_database")
    # Settings known only once a fixture has run (a server it started): a test module
    # defines `extra_service_env` to give them.
    extra = {}
    if "extra_service_env" in request.fixturenames:
        extra.update(request.getfixturevalue("extra_service_env"))
    sys_ = _start_system(request.node, vhost, identities, database, tmp_path, forkserver, extra)
    try:
        yield sys_
        _verify_after(sys_)
    finally:
        sys_.services.stop_all()
