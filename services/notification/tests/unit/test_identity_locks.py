"""The in-process half of the identity locks, and the advisory lock's key (no database:
the lock across replicas is `tests/integration/test_identity_locks.py`)."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from platen.notification.identity_locks import (
    AdvisoryLocks,
    IdentityLockError,
    LocalLocks,
    advisory_key,
)


def test_an_identitys_advisory_key_is_stable_signed_64_bit_and_its_own():
    key = advisory_key(("desktop", "ann"))
    # The same in every process and release: replicas of different versions must agree.
    assert key == advisory_key(("desktop", "ann")) == -1_003_436_356_646_492_226
    assert -(2**63) <= key < 2**63
    others = {
        advisory_key(k)
        for k in [("desktop", "bob"), ("print_server", "ann"), ("desktop", "ann~pc-1")]
    }
    assert key not in others and len(others) == 3
    # Kind and name are kept apart: ("a", "b~c") is not ("a~b", "c").
    assert advisory_key(("desktop", "a\x00b")) != advisory_key(("desktop\x00a", "b"))


async def test_one_holder_per_identity_and_none_kept_once_nobody_wants_it():
    locks = LocalLocks()
    inside: list[str] = []
    most = 0

    async def work(name: str) -> None:
        nonlocal most
        async with locks.hold(("desktop", name)):
            inside.append(name)
            most = max(most, inside.count("ann"))
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            inside.remove(name)

    # ann's five queue one behind the other; bob's runs beside them.
    await asyncio.gather(*(work("ann") for _ in range(5)), work("bob"))
    assert most == 1
    assert len(locks) == 0


async def test_a_newcomer_does_not_pass_a_waiter_the_lock_was_just_handed_to():
    """Released with a waiter, the lock is not `locked()` until the waiter runs: it must
    not be forgotten then, or a newcomer would get a fresh lock and enter beside it."""
    locks = LocalLocks()
    key = ("desktop", "ann")
    holders = 0
    most = 0
    release = asyncio.Event()

    async def hold(wait: asyncio.Event | None) -> None:
        nonlocal holders, most
        async with locks.hold(key):
            holders += 1
            most = max(most, holders)
            if wait is not None:
                await wait.wait()
            await asyncio.sleep(0)
            holders -= 1

    first = asyncio.create_task(hold(release))
    await asyncio.sleep(0)
    waiter = asyncio.create_task(hold(None))
    await asyncio.sleep(0)
    release.set()
    await first  # released; the waiter is woken, not yet run
    newcomer = asyncio.create_task(hold(None))
    await asyncio.gather(waiter, newcomer)
    assert most == 1
    assert len(locks) == 0


async def test_a_cancelled_waiter_leaves_the_lock_to_its_holder():
    locks = LocalLocks()
    key = ("desktop", "ann")
    held, done = asyncio.Event(), asyncio.Event()

    async def holder() -> None:
        async with locks.hold(key):
            held.set()
            await done.wait()

    holding = asyncio.create_task(holder())
    await held.wait()
    waiting = asyncio.create_task(holder())
    await asyncio.sleep(0)
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    assert len(locks) == 1 and not holding.done()  # still the holder's
    done.set()
    await holding
    assert len(locks) == 0


class TerminatedAfterLocking:
    """A connection whose backend is terminated once the lock is taken, as the client has
    read PostgreSQL's last error but not yet seen the socket close: asyncpg refuses the next
    query with `InternalClientError` (the real race is
    `tests/integration/test_identity_locks.py`, which meets either side of it)."""

    def __init__(self) -> None:
        self.released = False
        self.sent: list[str] = []

    async def execute(self, query: str, *args) -> None:
        self.sent.append(query.split()[0])
        if query == "ROLLBACK":
            raise asyncpg.InternalClientError(
                "cannot switch to state 15; another operation (2) is in progress"
            )

    async def acquire(self, timeout: float) -> TerminatedAfterLocking:
        return self

    async def release(self, conn: object) -> None:
        self.released = True


async def test_a_lock_whose_connection_broke_mid_way_is_reported_lost_and_the_work_redone():
    conn = TerminatedAfterLocking()
    locks = AdvisoryLocks(conn)  # type: ignore[arg-type]
    with pytest.raises(IdentityLockError, match="its lock was lost while held"):
        async with locks.hold(("desktop", "ann")):
            pass
    assert conn.sent == ["BEGIN", "SET", "SELECT", "ROLLBACK"]
    assert conn.released and len(locks._local) == 0
