"""Per-identity locks that hold across notification's replicas.

A sign-in, a revocation, a user change and the start-up reconciliation of one identity
each read what the database records and then write the broker to match; two of them
interleaved can undo each other (a reconciliation that read a desktop before its
revocation re-creates its queue after the revocation deleted it). They take this lock
around the read and the writes. `AdvisoryLocks` is a PostgreSQL advisory lock per
identity, so that it holds between processes: replicas share the database, not memory.
Each held lock keeps a connection of a pool of its own for as long as it is held (broker
calls included), so that waiting for a lock, or many identities worked on at once, never
takes the connections the deliveries need from the service's pool.

In front of it, an `asyncio.Lock` per identity: the waiters of one process queue there,
so a process asks the database once for an identity however many of its tasks want it.
Correctness rests on the advisory lock alone; `LocalLocks` (that in-process lock only) is
for a single process with no database, the tests over fakes.
"""

from __future__ import annotations

import asyncio
import hashlib
import struct
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

import asyncpg
import structlog

log = structlog.get_logger("notification.identity_locks")

# How long one waits for another replica to finish with an identity before giving up with
# `IdentityLockError` (retried like any failed sync): a sync holds it for a few management
# API calls, each with a 15 s timeout.
LOCK_TIMEOUT = 60.0

Key = tuple[str, str]

# What a lost or unreachable database raises. `InternalClientError` too: a connection
# whose backend was terminated has read PostgreSQL's last error but not yet seen the
# socket close, and refuses the next query with it ("another operation is in progress").
DATABASE_GONE = (
    OSError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
)


class IdentityLockError(RuntimeError):
    """An identity's lock could not be taken or was lost: nothing was done under it (or,
    lost, what was done is done again by the caller's retry; every step is idempotent)."""


class IdentityLocks(Protocol):
    def hold(self, key: Key) -> AbstractAsyncContextManager[None]: ...


def advisory_key(key: Key) -> int:
    """A stable signed 64-bit number for `key` (PostgreSQL's advisory lock takes a bigint).

    From a hash of the kind and name, the same in every process and Python version
    (`hash()` is salted per process); prefixed so no other lock of the database's users
    shares its numbers by accident. A collision only makes two identities wait for each
    other."""
    # Each part after its length: no two keys spell the same bytes.
    spelled = "".join(f"{len(part)}:{part}" for part in ("platen.notification.identity", *key))
    digest = hashlib.blake2b(spelled.encode(), digest_size=8).digest()
    return struct.unpack(">q", digest)[0]


class LocalLocks:
    """One `asyncio.Lock` per identity, within this process."""

    def __init__(self) -> None:
        # The lock, and how many tasks hold it or wait for it.
        self._locks: dict[Key, tuple[asyncio.Lock, list[int]]] = {}

    @asynccontextmanager
    async def hold(self, key: Key) -> AsyncIterator[None]:
        lock, users = self._locks.setdefault(key, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            # Forgotten once nobody holds or waits for it (counted: a lock just released
            # is not `locked()` before its next waiter runs): one lock per identity ever
            # touched would grow with the site for the life of the process.
            users[0] -= 1
            if not users[0]:
                del self._locks[key]

    def __len__(self) -> int:
        return len(self._locks)


class AdvisoryLocks:
    """A transaction-scoped advisory lock per identity, on `pool` (its own: see above).

    The lock lives in a transaction that writes nothing: it ends, and the lock with it,
    when the holder is done, when its task is cancelled (the pool rolls back a connection
    handed back in a transaction), and when the connection is lost (PostgreSQL ends the
    session): no path leaves an identity locked."""

    def __init__(self, pool: asyncpg.Pool, *, timeout: float = LOCK_TIMEOUT) -> None:
        self.pool = pool
        self.timeout = timeout
        self._local = LocalLocks()

    @asynccontextmanager
    async def hold(self, key: Key) -> AsyncIterator[None]:
        async with self._local.hold(key):
            conn = await self._connection(key)
            try:
                await self._lock(conn, key)
                failed = True
                try:
                    yield
                    failed = False
                finally:
                    await self._unlock(conn, key, raise_lost=not failed)
            finally:
                await self.pool.release(conn)

    async def _connection(self, key: Key) -> asyncpg.Connection:
        try:
            return await self.pool.acquire(timeout=self.timeout)
        except TimeoutError as exc:
            raise IdentityLockError(
                f"identity {key[1]!r} not locked: no database connection for its lock came"
                f" free within {self.timeout:g} s"
            ) from exc
        except DATABASE_GONE as exc:
            raise _unreachable(key, exc) from exc

    async def _lock(self, conn: asyncpg.Connection, key: Key) -> None:
        try:
            await conn.execute("BEGIN")
            # Server-side, so that the wait ends in PostgreSQL's queue, not in a cancelled
            # query whose lock might be granted as the cancellation arrives.
            await conn.execute(f"SET LOCAL lock_timeout = {int(self.timeout * 1000)}")
            await conn.execute("SELECT pg_advisory_xact_lock($1)", advisory_key(key))
        except asyncpg.LockNotAvailableError as exc:
            raise IdentityLockError(
                f"identity {key[1]!r} not locked: another replica has held it for more than"
                f" {self.timeout:g} s"
            ) from exc
        except DATABASE_GONE as exc:
            raise _unreachable(key, exc) from exc

    async def _unlock(self, conn: asyncpg.Connection, key: Key, *, raise_lost: bool) -> None:
        """End the lock's transaction. If that fails, the connection is gone, and so
        perhaps the lock before the holder had finished: another replica may have worked
        on the identity meanwhile, so the holder's work must be done again (it is
        idempotent). Said by raising when the work itself did not fail already."""
        try:
            await conn.execute("ROLLBACK")
        except DATABASE_GONE as exc:
            log.warning("identity lock lost while held", identity=key[1], error=repr(exc))
            if raise_lost:
                raise IdentityLockError(
                    f"identity {key[1]!r}: its lock was lost while held (the database"
                    f" connection dropped: {exc!r}); the work is to be done again"
                ) from exc


def _unreachable(key: Key, exc: BaseException) -> IdentityLockError:
    return IdentityLockError(
        f"identity {key[1]!r} not locked: the database cannot be reached ({exc!r})"
    )
