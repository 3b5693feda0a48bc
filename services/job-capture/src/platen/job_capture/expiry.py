"""Cancel jobs whose deadline passed while they waited for a decision.

Runs inside job-capture as a background task. Each round is one transaction: lock the
overdue jobs (SKIP LOCKED, so two job-capture processes share the work), cancel them and
record `job.cancelled` in the outbox. A job cancelled here frees its hold in the ledger.
"""

from __future__ import annotations

import asyncio
import os

import asyncpg
import structlog

from platen.events.base import Envelope
from platen.events.jobs import JobCancelled, JobFailed
from platen.messaging.handling import HandlerContext
from platen.messaging.service import Runtime

log = structlog.get_logger(__name__)

INTERVAL = float(os.environ.get("PLATEN_EXPIRY_INTERVAL_SECONDS", "2"))
# A released CUPS job whose backend never reports what the printer did (the backend was
# killed, or the CUPS job cancelled meanwhile) fails after this long: never charged, and
# its hold is released.
RELEASE_TIMEOUT = float(os.environ.get("PLATEN_RELEASE_TIMEOUT_SECONDS", "3600"))
REASON = "nobody answered for this job before its deadline"
UNREPORTED = "the print server never reported whether the job printed"


async def _close(
    pool: asyncpg.Pool,
    producer: str,
    select_sql: str,
    *args: object,
    state: str,
    reason: str,
    event: type[JobCancelled] | type[JobFailed],
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


async def fail_unreported(pool: asyncpg.Pool, producer: str) -> int:
    """Fail released CUPS jobs whose outcome never came back."""
    return await _close(
        pool,
        producer,
        """SELECT job_id, user_login, printer, document_name FROM jobs
           WHERE state = 'released' AND source = 'cups'
             AND updated_at < now() - make_interval(secs => $1)
           LIMIT 500 FOR UPDATE SKIP LOCKED""",
        RELEASE_TIMEOUT,
        state="failed",
        reason=UNREPORTED,
        event=JobFailed,
    )


async def run_expiry(rt: Runtime) -> None:
    while True:
        try:
            changed = await expire_once(rt.pool, rt.spec.name)
            changed += await fail_unreported(rt.pool, rt.spec.name)
            if changed:
                rt.relay.wake()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("expiry round failed; retrying")
        await asyncio.sleep(INTERVAL)


def start_expiry(rt: Runtime) -> None:
    rt.tasks.append(asyncio.create_task(run_expiry(rt), name="job-expiry"))
