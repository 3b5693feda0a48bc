"""The per-identity lock across replicas: two `BrokerIdentities`, as two notification
replicas, on one real PostgreSQL (each with its own pools) and one real RabbitMQ (its
management API and its desktop queues). What one does to an identity, the other cannot
undo by interleaving; a lock wait that is cancelled or times out, or a database that goes
away, leaves no lock behind and loses no work."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import aio_pika
import asyncpg
import pytest
import structlog
from aiormq.exceptions import ChannelNotFoundEntity

from platen.broker_setup.broker_admin import BrokerAdmin
from platen.db import create_pool
from platen.events.identities import RevokeDesktop
from platen.events.routing import desktop_broker_user, desktop_queue
from platen.localstack.servers import PG_BIN, LocalPostgres
from platen.messaging.fakes import FakeContext
from platen.messaging.publisher import Publisher
from platen.notification.broker_identities import BrokerIdentities
from platen.notification.domain import SignedInDesktop
from platen.notification.identities import IdentityHandlers
from platen.notification.identity_locks import AdvisoryLocks, IdentityLockError, advisory_key
from platen.notification.store import Store
from platen.testing.databases import service_pool

from ..conftest import MIGRATIONS

SCHEMA = "notification"


def admin_url(infra) -> str:
    """The management API with the broker administrator's credentials."""
    amqp, mgmt = urlsplit(infra.amqp_url), urlsplit(infra.management_url)
    netloc = f"{amqp.username}:{amqp.password}@{mgmt.hostname}:{mgmt.port}"
    return urlunsplit(mgmt._replace(netloc=netloc))


class Replica:
    """One notification process's identity machinery: its pools, management API client,
    publisher (desktop queues) and `BrokerIdentities` with advisory locks."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.pool: asyncpg.Pool
        self.lock_pool: asyncpg.Pool
        self.admin: BrokerAdmin
        self.publisher: Publisher
        self.broker = BrokerIdentities(disconnect_retries=(), retry_delays=(0.05, 0.2))

    def stores(self):
        @asynccontextmanager
        async def stores() -> AsyncIterator[Store]:
            async with self.pool.acquire() as conn:
                yield Store(conn)

        return stores

    async def revoke(self, login: str, desktop: str) -> FakeContext:
        """The revoke-desktop command's handler, in its own committed transaction; its
        broker step is left in the returned context, for `ctx.commit()`."""
        async with self.pool.acquire() as conn, conn.transaction():
            ctx = FakeContext(store=Store(conn), producer="notification")
            await IdentityHandlers(self.broker).on_revoke_desktop(
                ctx, RevokeDesktop(login=login, desktop=desktop)
            )
        return ctx


@asynccontextmanager
async def replica(name, database_url, infra, vhost, amqp_url, *, lock_timeout=30.0):
    r = Replica(name)
    r.pool = await create_pool(database_url, SCHEMA, max_size=4)
    r.lock_pool = await create_pool(database_url, SCHEMA, min_size=1, max_size=4)
    r.admin = BrokerAdmin(admin_url(infra), vhost[0])
    r.publisher = Publisher(amqp_url, "notification")
    await r.publisher.connect()
    r.broker.configure(
        r.admin,
        r.publisher.ensure_desktop_queue,
        r.stores(),
        r.publisher.delete_desktop_queue,
        AdvisoryLocks(r.lock_pool, timeout=lock_timeout),
    )
    try:
        yield r
    finally:
        for task in list(r.broker._tasks):
            task.cancel()
        await r.publisher.close()
        await r.admin.close()
        await r.lock_pool.close()
        await r.pool.close()


@pytest.fixture
async def replicas(pool, database_url, infra, vhost, amqp_url, channel):
    """Two replicas on the notification schema (migrated by `pool`) and the topology."""
    async with (
        replica("a", database_url, infra, vhost, amqp_url) as a,
        replica("b", database_url, infra, vhost, amqp_url) as b,
    ):
        yield a, b


@pytest.fixture
def login() -> str:
    return f"ann{uuid.uuid4().hex[:6]}"


async def signed_in(r: Replica, login: str, desktop: str) -> str:
    """`login`, enabled, with `desktop` signed in and issued on the broker; its username."""
    async with r.stores()() as store:
        await store.add_desktop_identity(login)
        await store.save_signed_in_desktop(SignedInDesktop(login, desktop, datetime.now(UTC)))
    await r.broker.sync_desktop(login)
    assert await r.admin.user_exists(login)
    await r.broker.issue_signed_in_desktop(login, desktop, "pw-" + uuid.uuid4().hex)
    username = desktop_broker_user(login, desktop)
    assert await r.admin.user_exists(username)
    return username


async def queue_exists(amqp_url: str, identity: str) -> bool:
    async with await aio_pika.connect(amqp_url) as conn:
        ch = await conn.channel()
        try:
            await ch.declare_queue(desktop_queue(identity), passive=True)
        except ChannelNotFoundEntity:
            return False
        return True


async def lock_waiters(pool: asyncpg.Pool) -> int:
    """Sessions of this database waiting for an advisory lock."""
    async with pool.acquire() as conn:
        return await conn.fetchval(
            """SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
               WHERE l.locktype = 'advisory' AND NOT l.granted
                 AND a.datname = current_database()"""
        )


async def until(predicate, timeout: float = 15) -> None:
    """Until `await predicate()` is true; TimeoutError after `timeout` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        if await predicate():
            return
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"not true within {timeout} s")
        await asyncio.sleep(0.05)


def gate(obj, method: str, when):
    """Stop `obj.method` on a call `when(*args)` holds for, until `release` is set."""
    reached, release = asyncio.Event(), asyncio.Event()
    original = getattr(obj, method)

    async def gated(*args, **kw):
        if when(*args) and not release.is_set():
            reached.set()
            await release.wait()
        return await original(*args, **kw)

    setattr(obj, method, gated)
    return reached, release


async def blocked_or_done(task: asyncio.Task, pool: asyncpg.Pool) -> None:
    """Until `task` has finished or waits for an advisory lock: what it can do while the
    other replica is stopped mid-way is done by then."""

    async def settled() -> bool:
        return task.done() or await lock_waiters(pool) > 0

    await until(settled)


async def test_a_revocation_on_one_replica_during_a_reconciliation_on_the_other_is_not_undone(
    replicas, login, amqp_url
):
    a, b = replicas
    username = await signed_in(a, login, "pc-1")
    # Replica a's start-up reconciliation stops just before it declares the desktop's
    # queue (it has read the desktop, not revoked yet, under the identity's lock)...
    reached, release = gate(a.broker, "_declare_queue", lambda name: name == username)
    reconciling = asyncio.create_task(a.broker.sync_all())
    await asyncio.wait_for(reached.wait(), 15)
    # ...when an administrator's revocation reaches replica b: committed, then its broker
    # step, which must wait for a's reconciliation of that identity to end.
    ctx = await b.revoke(login, "pc-1")
    revoking = asyncio.create_task(ctx.commit())
    await blocked_or_done(revoking, a.pool)
    release.set()
    await asyncio.wait_for(asyncio.gather(reconciling, revoking), 30)
    # Revoked last: no broker user, no queue, no record.
    assert not await a.admin.user_exists(username)
    assert not await queue_exists(amqp_url, username)
    async with a.stores()() as store:
        assert await store.signed_in_desktop(login, "pc-1") is None


async def test_a_sign_in_on_one_replica_cannot_re_create_a_desktop_revoked_on_the_other(
    replicas, login, amqp_url
):
    a, b = replicas
    username = await signed_in(a, login, "pc-1")
    # The desktop signs in again on replica a (a new credential for the same desktop),
    # which has checked its record and stops before it sets the new password...
    reached, release = gate(a.admin, "set_password", lambda name, pw: name == username)
    issuing = asyncio.create_task(a.broker.issue_signed_in_desktop(login, "pc-1", "new-pw"))
    await asyncio.wait_for(reached.wait(), 15)
    # ...when replica b revokes it.
    ctx = await b.revoke(login, "pc-1")
    revoking = asyncio.create_task(ctx.commit())
    await blocked_or_done(revoking, a.pool)
    release.set()
    await asyncio.wait_for(asyncio.gather(issuing, revoking, return_exceptions=True), 30)
    # The revocation came second: whatever the sign-in made is gone with it.
    assert not await a.admin.user_exists(username)
    assert not await queue_exists(amqp_url, username)
    async with a.stores()() as store:
        assert await store.signed_in_desktop(login, "pc-1") is None


async def test_a_lock_wait_cancelled_leaves_nothing_locked_and_takes_nothing_from_the_holder(
    replicas,
):
    a, b = replicas
    key = ("desktop", "cancelled")
    a_locks, b_locks = a.broker._locks, b.broker._locks
    held, done = asyncio.Event(), asyncio.Event()

    async def holder() -> None:
        async with a_locks.hold(key):
            held.set()
            await done.wait()

    async def waiter(locks) -> None:
        async with locks.hold(key):
            raise AssertionError("entered a lock another task holds")

    holding = asyncio.create_task(holder())
    await asyncio.wait_for(held.wait(), 15)
    # One waits in PostgreSQL (replica b), one in front of it in process (replica a).
    in_database = asyncio.create_task(waiter(b_locks))
    in_process = asyncio.create_task(waiter(a_locks))
    await until(lambda: _positive(lock_waiters(a.pool)))
    in_database.cancel()
    in_process.cancel()
    for task in (in_database, in_process):
        with pytest.raises(asyncio.CancelledError):
            await task
    # The holder holds it still, alone; nobody waits; b's connection went back clean.
    await until(lambda: _equal(lock_waiters(a.pool), 0))
    async with a.lock_pool.acquire() as probe:
        assert not await probe.fetchval("SELECT pg_try_advisory_lock($1)", advisory_key(key))
    assert b.lock_pool.get_idle_size() == b.lock_pool.get_size()
    assert not holding.done()
    # Released by the holder, the lock is free at once, for either replica.
    done.set()
    await holding
    async with b_locks.hold(key), a.lock_pool.acquire() as probe:
        assert not await probe.fetchval("SELECT pg_try_advisory_lock($1)", advisory_key(key))
    async with a_locks.hold(key):
        pass
    assert len(a_locks._local) == 0 and len(b_locks._local) == 0


async def _positive(count) -> bool:
    return await count > 0


async def _equal(count, value) -> bool:
    return await count == value


async def test_a_lock_held_too_long_by_another_replica_is_a_clear_error_and_the_work_is_retried(
    pool, database_url, infra, vhost, amqp_url, channel, login
):
    async with (
        replica("a", database_url, infra, vhost, amqp_url) as a,
        replica("b", database_url, infra, vhost, amqp_url, lock_timeout=0.5) as b,
    ):
        username = await signed_in(a, login, "pc-1")
        held, done = asyncio.Event(), asyncio.Event()

        async def holder() -> None:
            async with a.broker._locks.hold(("desktop", login)):
                held.set()
                await done.wait()

        holding = asyncio.create_task(holder())
        await asyncio.wait_for(held.wait(), 15)
        with pytest.raises(IdentityLockError, match="another replica has held it for more than"):
            async with b.broker._locks.hold(("desktop", login)):
                pass
        # A revocation on b meanwhile: refused by the lock, kept, and retried.
        retries = asyncio.create_task(b.broker.run())
        try:
            with structlog.testing.capture_logs() as logs:
                ctx = await b.revoke(login, "pc-1")
                await ctx.commit()
            warned = [e for e in logs if e["event"] == "identity not synced yet, will retry"]
            assert warned and "another replica has held it" in warned[0]["error"]
            assert await a.admin.user_exists(username)  # nothing done without the lock
            done.set()
            await holding
            # The record goes last, after the broker user and its queue.
            await until(lambda: _has_no_record(a, login))
            assert not await a.admin.user_exists(username)
            assert not await queue_exists(amqp_url, username)
        finally:
            retries.cancel()


async def _not(value) -> bool:
    return not await value


@pytest.fixture
def own_postgres() -> LocalPostgres:
    """A PostgreSQL of this test's own, to stop and start (the shared one serves every
    test on the worker)."""
    folder = Path(tempfile.mkdtemp(prefix="platen-lock-outage-"))
    folder.chmod(0o755)  # the postgres user must reach its data folder
    server = LocalPostgres(folder / "postgres").start()
    yield server
    server.stop()
    shutil.rmtree(folder, ignore_errors=True)


def stop_fast(server: LocalPostgres) -> None:
    """`pg_ctl stop -m fast`: every session ends and the server goes away."""
    argv = [str(PG_BIN / "pg_ctl"), "stop", "-D", str(server.folder / "data"), "-m", "fast", "-w"]
    if os.geteuid() == 0:  # as LocalPostgres runs it
        argv = ["runuser", "-u", "postgres", "--", *argv]
    subprocess.run(argv, check=True, capture_output=True, timeout=120)
    assert server.proc is not None
    server.proc.wait(30)


async def test_with_the_database_gone_a_revocation_is_a_clear_error_and_done_when_it_is_back(
    own_postgres, infra, vhost, amqp_url, channel, login
):
    database_url = own_postgres.admin_dsn
    async with (
        service_pool(database_url, "notification", SCHEMA, MIGRATIONS),
        replica("a", database_url, infra, vhost, amqp_url) as a,
    ):
        username = await signed_in(a, login, "pc-1")
        ctx = await a.revoke(login, "pc-1")  # committed; its broker step not yet done
        await asyncio.to_thread(stop_fast, own_postgres)
        retries = asyncio.create_task(a.broker.run())
        try:
            with structlog.testing.capture_logs() as logs:
                await ctx.commit()  # does not raise: retried in the background
            warned = [e for e in logs if e["event"] == "identity not synced yet, will retry"]
            assert warned and "the database cannot be reached" in warned[0]["error"]
            await asyncio.sleep(1)  # retries fail meanwhile; nothing half done
            assert await a.admin.user_exists(username)
            await asyncio.to_thread(own_postgres.start)
            # The record goes last, after the broker user and its queue.
            await until(lambda: _has_no_record(a, login), timeout=60)
            assert not await a.admin.user_exists(username)
            assert not await queue_exists(amqp_url, username)
            # The lock's transaction ends after the record is forgotten (a round trip of
            # its own): nothing may be left locked once it has.
            await until(lambda: _equal(advisory_locks(a.lock_pool), 0))
        finally:
            retries.cancel()


async def test_a_lock_lost_while_held_has_the_work_done_again(replicas, login, amqp_url):
    """The lock's connection dropped while a revocation worked under it: another replica
    could have worked on the identity meanwhile, so the revocation is done again."""
    a, b = replicas
    username = await signed_in(a, login, "pc-1")
    reached, release = gate(a.admin, "disconnect", lambda name, *_: name == username)
    retries = asyncio.create_task(a.broker.run())
    try:
        with structlog.testing.capture_logs() as logs:
            ctx = await a.revoke(login, "pc-1")
            revoking = asyncio.create_task(ctx.commit())
            await asyncio.wait_for(reached.wait(), 15)
            async with a.pool.acquire() as conn:
                [pid] = await conn.fetchval(
                    """SELECT array_agg(pid) FROM pg_locks
                       WHERE locktype = 'advisory' AND granted"""
                )
                assert await conn.fetchval("SELECT pg_terminate_backend($1)", pid)
            # Lost: replica b takes it at once.
            async with asyncio.timeout(5), b.broker._locks.hold(("desktop", login)):
                pass
            release.set()
            await revoking
            await until(lambda: _not(a.admin.user_exists(username)))
            await until(lambda: _has_no_record(a, login))
        lost = [e for e in logs if e["event"] == "identity not synced yet, will retry"]
        assert lost and "its lock was lost while held" in lost[0]["error"]
        assert not await queue_exists(amqp_url, username)
    finally:
        retries.cancel()


async def advisory_locks(pool: asyncpg.Pool) -> int:
    """Advisory locks held or waited for on the whole server (this test's own)."""
    async with pool.acquire() as conn:
        return await conn.fetchval("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")


async def _has_no_record(r: Replica, login: str) -> bool:
    async with r.stores()() as store:
        return await store.signed_in_desktop(login, "pc-1") is None
