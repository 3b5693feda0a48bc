"""The broker side of identities: makes the broker match what the database records.

A handler records the desired state (a desktop user enabled or disabled, a print server
issued or removed) in its transaction, and leaves for after the commit a call to `sync_*`
here, which declares the desktop queues (the login's own, and one for each desktop signed
in with the directory password) and, through the broker's management API, creates the
broker user, grants or revokes its permissions and closes its connections; a revoked
desktop's queue is deleted with its broker user.
Every step is idempotent: a sync that fails is retried in the background until it
succeeds, and `start` syncs everything at start-up, so a crash between a commit and its
sync is repaired on the next start. That start-up reconciliation runs in the background,
a few identities at a time (`RECONCILE_CONCURRENCY`), while the service already consumes:
each identity is reconciled under the same per-identity lock as a sign-in, a revocation or
a user change, and reads its state under that lock, so whichever comes second sees what
the first did (a revocation during the reconciliation is not undone). That lock is a
PostgreSQL advisory lock (`identity_locks`): it holds between replicas too.

The management API is reached at PLATEN_BROKER_MANAGEMENT_URL (with the credentials of a
broker administrator). Without it, identities are not managed: desktops then sign in
however the broker is set up, which is only fit for a development machine; desktop queues
are still declared.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import structlog
from prometheus_client import Gauge

from platen.broker_setup import permissions, print_servers
from platen.broker_setup.broker_admin import BrokerAdmin, Snapshot, vhost_of
from platen.db import create_pool
from platen.events.routing import DESKTOP_SEPARATOR, desktop_broker_user
from platen.notification.identity_locks import AdvisoryLocks, IdentityLocks, LocalLocks
from platen.notification.store import Store

log = structlog.get_logger("notification.identities")

# Connections opened just before a user was disabled may reach the management API's list
# a few seconds late: look for them again after these delays.
DISCONNECT_RETRIES = (0.5, 1, 2, 4, 8)
# Between attempts at a sync the broker refused (the management API down, say).
RETRY_DELAYS = (0.5, 1, 2, 5, 10, 30)
# Identities reconciled at once at start-up: each is a handful of management API calls, so
# one at a time took 78 s for 10,000 users (183 s creating them); many more at once would
# only queue at the broker's management API and the database pool.
RECONCILE_CONCURRENCY = 16
# The identity locks' own pool: a held lock keeps a connection, so as many as the
# reconciliation holds at once, and a few more for the sign-ins, revocations and user
# changes meanwhile (which otherwise wait for one, up to the lock timeout).
LOCK_CONNECTIONS = RECONCILE_CONCURRENCY + 4

Stores = Callable[[], AbstractAsyncContextManager[Any]]


class BrokerIdentities:
    """Created unconfigured by main.py (its handlers need it) and configured by `start`
    (the service's on_ready hook), or by `configure` in a test."""

    def __init__(
        self,
        *,
        disconnect_retries: tuple[float, ...] = DISCONNECT_RETRIES,
        retry_delays: tuple[float, ...] = RETRY_DELAYS,
    ) -> None:
        self.admin: Any = None  # a BrokerAdmin, or None when identities are not managed
        self._declare_queue: Callable[[str], Awaitable[None]] | None = None
        self._delete_queue: Callable[[str], Awaitable[None]] | None = None
        self._stores: Stores | None = None
        self._disconnect_retries = disconnect_retries
        self._retry_delays = retry_delays
        self._locks: IdentityLocks = LocalLocks()
        self._pending: set[tuple[str, str]] = set()
        self._wakeup = asyncio.Event()
        self._tasks: set[asyncio.Task] = set()
        # Identities the start-up reconciliation has yet to do (a metric while it runs).
        self.unreconciled = 0

    @property
    def managed(self) -> bool:
        return self.admin is not None

    def configure(
        self,
        admin: Any,
        declare_queue: Callable[[str], Awaitable[None]],
        stores: Stores,
        delete_queue: Callable[[str], Awaitable[None]],
        locks: IdentityLocks | None = None,
    ) -> None:
        """`declare_queue`/`delete_queue`: of a desktop identity (a login, or
        `<login>~<desktop>`), `Publisher.ensure_desktop_queue`/`delete_desktop_queue`.
        `locks`: `AdvisoryLocks` wherever replicas may run (`start`); in-process locks by
        default, for a single process over fakes."""
        self.admin = admin
        self._declare_queue = declare_queue
        self._delete_queue = delete_queue
        self._stores = stores
        self._locks = locks or LocalLocks()

    async def start(self, rt) -> None:
        """on_ready hook: connect to the management API, sync every known identity, then
        keep retrying the syncs that fail."""
        url = os.environ.get("PLATEN_BROKER_MANAGEMENT_URL")
        if not url:
            log.warning("desktop identities are not managed: PLATEN_BROKER_MANAGEMENT_URL unset")
        admin = BrokerAdmin(url, vhost_of(rt.settings.amqp_url)) if url else None

        @asynccontextmanager
        async def stores() -> AsyncIterator[Store]:
            async with rt.pool.acquire() as conn:
                yield Store(conn)

        # A pool of its own (see `identity_locks`), on the service's database and schema.
        lock_pool = await create_pool(
            rt.settings.database_url, rt.spec.schema, min_size=1, max_size=LOCK_CONNECTIONS
        )
        self.configure(
            admin,
            rt.publisher.ensure_desktop_queue,
            stores,
            rt.publisher.delete_desktop_queue,
            AdvisoryLocks(lock_pool),
        )
        gauge = Gauge(
            "platen_identities_unreconciled",
            "Identities the start-up reconciliation has not made right on the broker yet",
            registry=rt.metrics.registry,
        )
        gauge.set_function(lambda: self.unreconciled)
        rt.tasks.append(
            asyncio.create_task(self._run_then_close(lock_pool), name="identity-retries")
        )
        # Not awaited: deliveries (prompts) are consumed meanwhile. Its task ends, so it is
        # kept out of `rt.tasks`, whose tasks must run for the life of the service.
        self._spawn(self._reconcile())

    async def _run_then_close(self, lock_pool) -> None:
        """`run` for the life of the service (its tasks are cancelled at shutdown), then
        the locks' pool goes: terminated, not closed, as a lock still held by a task
        cancelled with the service would keep `close` waiting; PostgreSQL releases the
        locks of a session that ends."""
        try:
            await self.run()
        finally:
            lock_pool.terminate()

    async def _reconcile(self) -> None:
        """`sync_all` until it has read what to reconcile (the database may be away)."""
        attempt = 0
        while True:
            try:
                return await self.sync_all()
            except Exception as exc:
                log.error("identities not reconciled, will try again", error=repr(exc))
                await asyncio.sleep(self._retry_delays[min(attempt, len(self._retry_delays) - 1)])
                attempt += 1

    async def sync_all(self) -> None:
        """Make the broker match every identity the database records, RECONCILE_CONCURRENCY
        at a time. One the broker refuses is retried in the background (`run`)."""
        assert self._stores is not None
        started = time.monotonic()
        async with self._stores() as store:
            desktops = await store.desktop_identities()
            servers = await store.print_servers() if self.managed else []
        # Revocations the broker had not done yet (the service stopped in between).
        revoked = [d for d in await self._signed_in() if d.revoked]
        keys = [
            *(("reconcile", d.login) for d in desktops),
            *(("signed_in", f"{d.login}{DESKTOP_SEPARATOR}{d.desktop}") for d in revoked),
            *(("print_server", s.name) for s in servers),
        ]
        self.unreconciled = len(keys)
        log.info("reconciling identities", identities=len(keys), at_once=RECONCILE_CONCURRENCY)
        # Read before any identity is looked at: a change made after it was read is made
        # under that identity's lock, and its reconciliation then finds the database
        # changed too (so it writes), or the broker already right. What already matches
        # it is not written again.
        snapshot = await self.admin.snapshot() if self.managed else None
        todo = iter(keys)
        failed: list[tuple[str, str]] = []

        async def worker() -> None:
            for key in todo:  # one iterator shared by the workers: each key once
                try:
                    await self._sync_one(key, snapshot)
                except Exception as exc:
                    if not failed:  # one line, not one per identity of a broker that is down
                        log.warning("identity not reconciled, will retry", error=repr(exc))
                    failed.append(key)
                self.unreconciled -= 1

        await asyncio.gather(*(worker() for _ in range(RECONCILE_CONCURRENCY)))
        if failed:
            # Retried as a user change is: `desktop` rather than `reconcile` from here on.
            self._pending.update(("desktop", n) if k == "reconcile" else (k, n) for k, n in failed)
            self._wakeup.set()
        log.info(
            "identities reconciled",
            users=len(desktops),
            print_servers=len(servers),
            revoked_desktops=len(revoked),
            failed=len(failed),
            seconds=round(time.monotonic() - started, 1),
        )

    # ------------------------------------------------------------- after a commit

    async def sync_desktop(self, login: str) -> None:
        """Make the broker match desktop user `login` as the database has it now."""
        await self._sync(("desktop", login))

    async def sync_print_server(self, name: str) -> None:
        await self._sync(("print_server", name))

    async def issue_desktop_credential(self, login: str, password: str) -> None:
        """Set the password of `login`'s broker user, before the reply carrying it is sent
        (raises if it could not be set: then no reply goes, and the requester asks again)."""
        async with self._lock(("desktop", login)):
            await self.admin.set_password(login, password)
            await self._apply_desktop(login, await self._desktop_enabled(login))

    async def issue_signed_in_desktop(self, login: str, desktop: str, password: str) -> None:
        """Create or renew the broker user of `login`'s desktop `desktop` with this
        password, with `login`'s desktop permissions if the login is enabled (raises if it
        could not be set: then nothing is handed to the desktop)."""
        username = desktop_broker_user(login, desktop)
        assert self._stores is not None
        async with self._lock(("desktop", login)):
            # Revoked between the sign-in's commit and now (deliveries run concurrently):
            # making the broker user now would leave one nobody lists or can revoke.
            async with self._stores() as store:
                record = await store.signed_in_desktop(login, desktop)
            if record is None or record.revoked:
                raise RuntimeError(f"{login}'s desktop {desktop} was signed out meanwhile")
            assert self._declare_queue is not None
            # Its own queue, there before the desktop first connects to read it.
            await self._declare_queue(username)
            await self.admin.set_password(username, password)
            if await self._desktop_enabled(login):
                await self.admin.grant(username, permissions.desktop_user(username))
            else:  # disabled meanwhile: a user with no rights signs in to nothing
                await self.admin.revoke(username)

    async def sync_signed_in_desktop(self, login: str, desktop: str) -> None:
        """Make the broker match one signed-in desktop: a revoked one's broker user is
        deleted and its connections closed, then the record goes."""
        await self._sync(("signed_in", f"{login}{DESKTOP_SEPARATOR}{desktop}"))

    async def issue_print_server(self, name: str, password: str) -> None:
        """Create or renew print server `name`'s broker user with this password (raises, as
        `issue_desktop_credential` does)."""
        async with self._lock(("print_server", name)):
            await print_servers.issue(self.admin, name, password=password)

    # ------------------------------------------------------------------ the syncs

    def _lock(self, key: tuple[str, str]) -> AbstractAsyncContextManager[None]:
        return self._locks.hold(key)

    async def _sync(self, key: tuple[str, str]) -> None:
        """Sync one identity now; if the broker refuses, retry it in the background."""
        try:
            await self._sync_one(key)
        except Exception as exc:
            log.warning("identity not synced yet, will retry", identity=key[1], error=repr(exc))
            self._pending.add(key)
            self._wakeup.set()

    async def _sync_one(self, key: tuple[str, str], snapshot: Snapshot | None = None) -> None:
        """`snapshot`: the broker as the start-up reconciliation found it when it began,
        for a `reconcile` key (the others ask the broker)."""
        kind, name = key
        if kind in ("desktop", "reconcile"):
            # Read under the lock: what a sign-in, revocation or user change that held it
            # just now did is what this one sees.
            async with self._lock(("desktop", name)):
                enabled = await self._desktop_enabled(name)
                # Late connections are looked for after a change, not at every start.
                await self._apply_desktop(
                    name,
                    enabled,
                    stragglers=kind == "desktop",
                    snapshot=snapshot if kind == "reconcile" else None,
                )
        elif kind == "signed_in":
            await self._sync_signed_in(*name.split(DESKTOP_SEPARATOR, 1))
        else:
            await self._sync_print_server(name)

    async def _desktop_enabled(self, login: str) -> bool | None:
        assert self._stores is not None
        async with self._stores() as store:
            identity = await store.desktop_identity(login)
        return None if identity is None else identity.enabled

    async def _apply_desktop(
        self,
        login: str,
        enabled: bool | None,
        *,
        stragglers: bool = False,
        snapshot: Snapshot | None = None,
    ) -> None:
        """`stragglers`: the user has just been disabled; look again for connections the
        management API lists late. `snapshot`: the broker as the reconciliation found it;
        what matches it already is not written."""
        assert self._declare_queue is not None
        if enabled is None:
            return
        # Declared for every user, enabled or not: a message may be sent to a disabled
        # user (their last balance), and a queue lets nothing be read by itself.
        await self._declare_queue(login)
        if self.admin is None:
            return
        records = await self._signed_in(login)
        if snapshot is not None:
            await self._delete_unrecorded(login, snapshot, {d.username for d in records})
        # The desktops signed in with the directory password hold the login's rights too.
        signed_in = [
            d.username
            for d in records
            # One whose sign-in stopped before its broker user was made has nothing to set.
            if not d.revoked
            and (
                d.username in snapshot.users
                if snapshot
                else await self.admin.user_exists(d.username)
            )
        ]
        # Each signed-in desktop's own queue: also how an installation from before desktops
        # had queues of their own gets them (they read the login's queue then).
        for username in signed_in:
            await self._declare_queue(username)
        if enabled:
            if snapshot is None or login not in snapshot.users:
                await self.admin.ensure_user(login)
            for username in (login, *signed_in):
                wanted = permissions.desktop_user(username)
                if snapshot is None or not snapshot.has(username, wanted):
                    await self.admin.grant(username, wanted)
            log.info("desktop identity ready", user=login, signed_in_desktops=len(signed_in))
        else:
            for username in (login, *signed_in):
                if snapshot is None or not snapshot.has_none(username):
                    await self.admin.revoke(username)
                await self.admin.disconnect(username, "your Platen account is disabled")
                if stragglers:
                    self._spawn(self._disconnect_stragglers(login, username))
            log.info("desktop identity revoked", user=login, signed_in_desktops=len(signed_in))

    async def _delete_unrecorded(self, login: str, snapshot: Snapshot, recorded: set[str]) -> None:
        """Delete `login`'s desktop broker users that no sign-in record stands for.

        A record is committed before its broker user is made and forgotten only after the
        user is deleted, so a user the snapshot shows with no record left behind it is one
        nobody can list or revoke: a sign-in that raced a revocation on another replica
        while the per-identity lock was per process (before the advisory lock), or a
        sign-in whose lock was lost with its database connection. The start-up
        reconciliation removes it."""
        assert self.admin is not None and self._delete_queue is not None
        for username in sorted(snapshot.signed_in_desktops_of(login) - recorded):
            await self.admin.delete_user(username)
            await self.admin.disconnect(username, "this desktop was signed out of Platen")
            await self._delete_queue(username)
            log.warning(
                "desktop broker user with no sign-in deleted", user=login, broker_user=username
            )

    async def _signed_in(self, login: str | None = None) -> list:
        assert self._stores is not None
        if self.admin is None:
            return []
        async with self._stores() as store:
            return await store.signed_in_desktops(login)

    async def _sync_signed_in(self, login: str, desktop: str) -> None:
        if self.admin is None:
            return
        assert self._stores is not None
        async with self._lock(("desktop", login)):
            async with self._stores() as store:
                found = await store.signed_in_desktop(login, desktop)
            if found is None or not found.revoked:
                return  # signed in again meanwhile: `issue_signed_in_desktop` set it up
            # Deleted first, so the closed connection cannot sign in again.
            await self.admin.delete_user(found.username)
            await self.admin.disconnect(found.username, "this desktop was signed out of Platen")
            # Nobody can read its queue again: what is sent to the user must not pile up.
            assert self._delete_queue is not None
            await self._delete_queue(found.username)
            async with self._stores() as store:
                await store.forget_signed_in_desktop(login, desktop)
        log.info("signed-in desktop revoked", user=login, desktop=desktop)
        self._spawn(self._disconnect_stragglers(login, found.username, revoked=True))

    async def _sync_print_server(self, name: str) -> None:
        if self.admin is None:
            return
        assert self._stores is not None
        async with self._lock(("print_server", name)):
            async with self._stores() as store:
                server = await store.print_server(name)
            if server is None:
                return
            if server.removed:
                await print_servers.withdraw(self.admin, server.username)
                async with self._stores() as store:
                    await store.forget_print_server(name)
                log.info("print server identity removed", print_server=name)
            else:
                # Exactly a print server's permissions again, so an upgrade that narrows
                # them applies.
                await self.admin.grant(server.username, permissions.print_server(server.username))

    async def _disconnect_stragglers(
        self, login: str, username: str | None = None, *, revoked: bool = False
    ) -> None:
        """`username`: the broker user to look for (the login's own by default);
        `revoked`: a signed-in desktop's, deleted (nothing can enable it again)."""
        username = username or login
        for delay in self._disconnect_retries:
            await asyncio.sleep(delay)
            try:
                if not revoked and await self._desktop_enabled(login):
                    return  # enabled again meanwhile
                if await self.admin.disconnect(username):
                    log.info("late desktop connection closed", user=login, broker_user=username)
            except Exception as exc:  # a best effort on top of the revoked permissions
                log.warning("could not look for late connections", user=login, error=str(exc))

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def run(self) -> None:
        """Retry the syncs that failed, with growing pauses, until each succeeds."""
        attempt = 0
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            pending, self._pending = self._pending, set()
            for key in sorted(pending):
                try:
                    await self._sync_one(key)
                except Exception as exc:
                    log.warning("identity sync failed again", identity=key[1], error=repr(exc))
                    self._pending.add(key)
            if self._pending:
                await asyncio.sleep(self._retry_delays[min(attempt, len(self._retry_delays) - 1)])
                attempt += 1
                self._wakeup.set()
            else:
                attempt = 0
