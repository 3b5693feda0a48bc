"""Close jobs whose time ran out: cancel those still waiting for a decision at their
deadline, and charge as unconfirmed released jobs nobody reported on.

Runs inside job-capture as a background task. Each round is one transaction: lock the
overdue jobs (SKIP LOCKED, so two job-capture processes share the work), move them and
record `job.cancelled` (the ledger frees the hold) or `job.unconfirmed` (the ledger posts
it) in the outbox.
"""

from __future__ import annotations

import asyncio
import os

import asyncpg
import structlog

from platen.events.base import Envelope
from platen.events.jobs import JobCancelled, JobUnconfirmed
from platen.messaging.handling import HandlerContext
from platen.messaging.service import Runtime

log = structlog.get_logger(__name__)

INTERVAL = float(os.environ.get("PLATEN_EXPIRY_INTERVAL_SECONDS", "2"))
# A released CUPS job whose backend neither reports what the printer did nor sends a
# heartbeat for this long (the backend was killed, the print server lost) has an unknown
# fate: it is charged as "unconfirmed", since the printer may have printed it, and an
# administrator may refund it. The backend's heartbeat keeps a long print from this.
RELEASE_TIMEOUT = float(os.environ.get("PLATEN_RELEASE_TIMEOUT_SECONDS", "3600"))
REASON = "nobody answered for this job before its deadline"
UNREPORTED = "the print server never reported whether the job printed: charged, as it may have"


async def _close(
    pool: asyncpg.Pool,
    producer: str,
    select_sql: str,
    *args: object,
    state: str,
    reason: str,
    event: type[JobCancelled] | type[JobUnconfirmed],
) -> int:
    """Lock the jobs `select_sql` finds, move them to `state` with `reason`, drop their
    spooled documents and record `event` for each, all in one transaction."""
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(select_sql, *args)
        if not rows:
            return 0
        ids = [r["job_id"] for r in rows]
        await conn.execute(
            "UPDATE jobs SET state = $2, reason = $3, updated_at = now() "
            "WHERE job_id = ANY($1::uuid[])",
            ids,
            state,
            reason,
        )
        await conn.execute("DELETE FROM spool WHERE job_id = ANY($1::uuid[])", ids)
        ctx = HandlerContext(conn, Envelope("expiry", 1, producer), producer, None, log)
        for r in rows:
            await ctx.emit(
                event(
                    job_id=r["job_id"],
                    user=r["user_login"],
                    printer=r["printer"],
                    document_name=r["document_name"],
                    reason=reason,
                ),
                correlation_id=str(r["job_id"]),
            )
            log.info("job closed by its deadline", job_id=str(r["job_id"]), state=state)
    return len(rows)


async def expire_once(pool: asyncpg.Pool, producer: str) -> int:
    """Cancel jobs still waiting for a decision at their deadline."""
    return await _close(
        pool,
        producer,
        """SELECT job_id, user_login, printer, document_name FROM jobs
           WHERE state IN ('captured', 'priced') AND deadline_at < now()
           ORDER BY deadline_at LIMIT 500 FOR UPDATE SKIP LOCKED""",
        state="cancelled",
        reason=REASON,
        event=JobCancelled,
    )


async def mark_unconfirmed(pool: asyncpg.Pool, producer: str) -> int:
    """Charge released CUPS jobs whose outcome never came back, as unconfirmed."""
    return await _close(
        pool,
        producer,
        """SELECT job_id, user_login, printer, document_name FROM jobs
           WHERE state = 'released' AND source = 'cups'
             AND greatest(updated_at, alive_at) < now() - make_interval(secs => $1)
           LIMIT 500 FOR UPDATE SKIP LOCKED""",
        RELEASE_TIMEOUT,
        state="unconfirmed",
        reason=UNREPORTED,
        event=JobUnconfirmed,
    )


async def run_expiry(rt: Runtime) -> None:
    while True:
        try:
            changed = await expire_once(rt.pool, rt.spec.name)
            changed += await mark_unconfirmed(rt.pool, rt.spec.name)
            if changed:
                rt.relay.wake()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("expiry round failed; retrying")
        await asyncio.sleep(INTERVAL)


def start_expiry(rt: Runtime) -> None:
    rt.tasks.append(asyncio.create_task(run_expiry(rt), name="job-expiry"))
