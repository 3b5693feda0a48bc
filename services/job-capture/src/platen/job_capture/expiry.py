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


async def expire_once(pool: asyncpg.Pool, producer: str) -> int:
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(
            """SELECT job_id, user_login, printer, document_name FROM jobs
               WHERE state IN ('captured', 'priced') AND deadline_at < now()
               ORDER BY deadline_at LIMIT 500 FOR UPDATE SKIP LOCKED"""
        )
        if not rows:
            return 0
        await conn.execute(
            "UPDATE jobs SET state = 'cancelled', reason = $2, updated_at = now() "
            "WHERE job_id = ANY($1::uuid[])",
            [r["job_id"] for r in rows],
            REASON,
        )
        await conn.execute(
            "DELETE FROM spool WHERE job_id = ANY($1::uuid[])", [r["job_id"] for r in rows]
        )
        for r in rows:
            ctx = HandlerContext(conn, Envelope("expiry", 1, producer), producer, None, log)
            await ctx.emit(
                JobCancelled(
                    job_id=r["job_id"],
                    user=r["user_login"],
                    printer=r["printer"],
                    document_name=r["document_name"],
                    reason=REASON,
                ),
                correlation_id=str(r["job_id"]),
            )
            log.info("job expired", job_id=str(r["job_id"]))
    return len(rows)


async def fail_unreported(pool: asyncpg.Pool, producer: str) -> int:
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(
            """SELECT job_id, user_login, printer, document_name FROM jobs
               WHERE state = 'released' AND source = 'cups'
                 AND updated_at < now() - make_interval(secs => $1)
               LIMIT 500 FOR UPDATE SKIP LOCKED""",
            RELEASE_TIMEOUT,
        )
        if not rows:
            return 0
        await conn.execute(
            "UPDATE jobs SET state = 'failed', reason = $2, updated_at = now() "
            "WHERE job_id = ANY($1::uuid[])",
            [r["job_id"] for r in rows],
            UNREPORTED,
        )
        ctx = HandlerContext(conn, Envelope("expiry", 1, producer), producer, None, log)
        for r in rows:
            await ctx.emit(
                JobFailed(
                    job_id=r["job_id"],
                    user=r["user_login"],
                    printer=r["printer"],
                    document_name=r["document_name"],
                    reason=UNREPORTED,
                ),
                correlation_id=str(r["job_id"]),
            )
            log.warning("released job never reported; failed", job_id=str(r["job_id"]))
    return len(rows)


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
