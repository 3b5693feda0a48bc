"""The ledger gives periodic quotas by itself: every `PLATEN_QUOTA_INTERVAL_SECONDS`, each
quota's current period, if not given yet (handlers/quotas.py `give`).

Safe with replicas and restarts: each group's period is claimed in the database before it
is given, so a period is given once whichever replica gets there first, and a run that
fails is rolled back whole and tried again at the next round. Each group is its own
transaction, so one group's trouble does not hold up the others.
"""

from __future__ import annotations

import asyncio
from datetime import date

import asyncpg
import structlog

from platen.account_ledger.handlers.quotas import give
from platen.account_ledger.store import Store
from platen.account_ledger.subscriptions import subscribe
from platen.db import checked_transaction
from platen.events.base import Envelope
from platen.messaging.handling import HandlerContext
from platen.messaging.service import Runtime
from platen.messaging.settings import setting

log = structlog.get_logger(__name__)


interval = setting("PLATEN_QUOTA_INTERVAL_SECONDS", float, "600")


async def run_once(pool: asyncpg.Pool, producer: str, day: date | None = None) -> int:
    """Give every quota's period `day` (today) falls in that is not given yet; the number
    of groups given one now."""
    day = day or date.today()
    async with pool.acquire() as conn:
        groups = [q.group for q, _ in await Store(conn).quotas()]
    given = 0
    for group in groups:
        async with pool.acquire() as conn, checked_transaction(conn):
            store = Store(conn)
            envelope = Envelope("quota-schedule", 1, producer)
            ctx = HandlerContext(
                conn, envelope, producer, None, log, store=store, subscriptions=subscribe
            )  # type: ignore[arg-type]
            for quota, _ in await store.quotas(group):  # it may be gone since
                run = await give(ctx, quota, day)
                given += bool(run and run.given)
    return given


async def run_schedule(rt: Runtime) -> None:
    while True:
        try:
            if await run_once(rt.pool, rt.spec.name):
                rt.relay.wake()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("quota round failed; retrying at the next round")
        await asyncio.sleep(interval())


def start_quota_schedule(rt: Runtime) -> None:
    rt.tasks.append(asyncio.create_task(run_schedule(rt), name="quota-schedule"))
