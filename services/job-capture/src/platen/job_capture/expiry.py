"""Close jobs whose time ran out: cancel those still waiting for a decision at their
deadline, and charge as unconfirmed released jobs nobody reported on.

Runs inside job-capture as a background task. Each round is one transaction: the store
locks the overdue jobs (SKIP LOCKED, so two job-capture processes share the work), each
job moves itself (`Job.expire`, `Job.mark_unconfirmed`), and the store saves the moves
and the `job.cancelled` (the ledger frees the hold) or `job.unconfirmed` (the ledger posts
it) they queued, in the outbox.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import asyncpg
import structlog

from platen.db import checked_transaction
from platen.events.base import Envelope
from platen.job_capture.decisions import tell_backend
from platen.job_capture.domain import EXPIRED, UNREPORTED, IllegalTransition, Job
from platen.job_capture.handlers import publish
from platen.job_capture.store import Store
from platen.messaging.handling import HandlerContext
from platen.messaging.publisher import Publisher
from platen.messaging.service import Runtime
from platen.messaging.settings import setting

log = structlog.get_logger(__name__)


# Seconds between two rounds.
interval = setting("PLATEN_EXPIRY_INTERVAL_SECONDS", float, "2")
# A released CUPS job whose backend neither reports what the printer did nor sends a
# heartbeat for this long (the backend was killed, the print server lost) has an unknown
# fate: it is charged as "unconfirmed", since the printer may have printed it, and an
# administrator may refund it. The backend's heartbeat keeps a long print from this.
release_timeout = setting("PLATEN_RELEASE_TIMEOUT_SECONDS", float, "3600")
# The reasons the closed jobs carry (named here as the tests and operators know them).
REASON = EXPIRED
__all__ = [
    "REASON",
    "UNREPORTED",
    "close",
    "expire_once",
    "mark_unconfirmed",
    "run_expiry",
    "start_expiry",
]


async def close(ctx: HandlerContext, jobs: list[Job], transition: Callable[[Job], None]) -> int:
    """Move each of `jobs` with `transition`, save the moves through `ctx.store` and emit
    what they queued; the number of jobs closed."""
    closed = []
    for job in jobs:
        try:
            transition(job)
        except IllegalTransition as exc:  # the store's query and the domain disagree: a bug
            log.error("job not closed", job_id=str(job.job_id), error=str(exc))
            continue
        closed.append(job)
    if not closed:
        return 0
    await ctx.store.move(*closed)
    for job in closed:
        # One context serves the whole round: each job's events carry its own marks only.
        ctx.marks = dict(job.marks)
        await publish(ctx, job)
        tell_backend(ctx, job)  # a backend waiting for this job stops waiting
        log.info("job closed by its deadline", job_id=str(job.job_id), state=job.state, **job.marks)
    ctx.marks = {}
    return len(closed)


async def _round(
    pool: asyncpg.Pool,
    producer: str,
    find: Callable[[Store], Awaitable[list[Job]]],
    transition: Callable[[Job], None],
    publisher: Publisher | None = None,
) -> int:
    """One round in one transaction: lock the jobs `find` returns and close them; then
    (`publisher` given) tell their waiting backends: only once PostgreSQL has committed
    the round (a round it rolled back raises `RolledBack`, and no backend hears of it)."""
    async with pool.acquire() as conn:
        async with checked_transaction(conn):
            store = Store(conn)
            envelope = Envelope("expiry", 1, producer)
            ctx = HandlerContext(conn, envelope, producer, publisher, log, store=store)  # type: ignore[arg-type]
            closed = await close(ctx, await find(store), transition)
        for effect in ctx.effects:
            await effect()
        return closed


async def expire_once(pool: asyncpg.Pool, producer: str, publisher: Publisher | None = None) -> int:
    """Cancel jobs still waiting for a decision at their deadline."""
    return await _round(pool, producer, lambda store: store.overdue(), Job.expire, publisher)


async def mark_unconfirmed(
    pool: asyncpg.Pool, producer: str, publisher: Publisher | None = None
) -> int:
    """Charge released CUPS jobs whose outcome never came back, as unconfirmed."""
    return await _round(
        pool,
        producer,
        lambda store: store.unreported(release_timeout()),
        Job.mark_unconfirmed,
        publisher,
    )


async def run_expiry(rt: Runtime) -> None:
    while True:
        try:
            changed = await expire_once(rt.pool, rt.spec.name, rt.publisher)
            changed += await mark_unconfirmed(rt.pool, rt.spec.name, rt.publisher)
            if changed:
                rt.relay.wake()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("expiry round failed; retrying")
        await asyncio.sleep(interval())


def start_expiry(rt: Runtime) -> None:
    rt.tasks.append(asyncio.create_task(run_expiry(rt), name="job-expiry"))
