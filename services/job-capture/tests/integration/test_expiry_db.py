"""Deadlines in job-capture, against a real PostgreSQL."""

from __future__ import annotations

import contextlib
import uuid

import asyncpg
import pytest

from platen.db import RolledBack
from platen.events.registry import decode
from platen.job_capture import expiry


async def add_job(pool, state: str, *, source="cups", deadline="1 hour", updated="0 s"):
    job_id = uuid.uuid4()
    async with pool.acquire() as conn:
        await conn.execute(
            f"""INSERT INTO jobs (job_id, user_login, printer, document_name, size_bytes,
                                  copies, state, source, deadline_at, updated_at)
                VALUES ($1, 'alice', 'lab', 'a.pdf', 1, 1, $2, $3,
                        now() + interval '{deadline}', now() - interval '{updated}')""",
            job_id,
            state,
            source,
        )
    return job_id


async def states(pool) -> dict:
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT job_id, state, reason FROM jobs")
    return {r["job_id"]: (r["state"], r["reason"]) for r in rows}


async def emitted(pool) -> list:
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT message_type, schema_version, body FROM outbox")
    return [decode(r["message_type"], r["schema_version"], r["body"]) for r in rows]


async def test_jobs_past_their_deadline_are_cancelled_with_the_reason(pool):
    late = await add_job(pool, "priced", deadline="-1 s")
    waiting = await add_job(pool, "captured")
    released = await add_job(pool, "released", deadline="-1 s")
    assert await expiry.expire_once(pool, "job-capture") == 1
    now = await states(pool)
    assert now[late] == ("cancelled", expiry.REASON)
    assert now[waiting][0] == "captured" and now[released][0] == "released"
    [event] = await emitted(pool)
    assert (event.message_type, event.job_id, event.reason) == (
        "job.cancelled",
        late,
        expiry.REASON,
    )
    assert await expiry.expire_once(pool, "job-capture") == 0  # once


async def test_a_released_cups_job_that_never_reports_is_charged_as_unconfirmed(pool, monkeypatch):
    monkeypatch.setenv("PLATEN_RELEASE_TIMEOUT_SECONDS", "60")
    silent = await add_job(pool, "released", updated="2 minutes")
    recent = await add_job(pool, "released", updated="1 s")
    api = await add_job(pool, "released", source="api", updated="2 minutes")
    # Released long ago, but its backend said a moment ago that it is still printing.
    printing = await add_job(pool, "released", updated="2 minutes")
    async with pool.acquire() as conn:
        await conn.execute("UPDATE jobs SET alive_at = now() WHERE job_id = $1", printing)
    assert await expiry.mark_unconfirmed(pool, "job-capture") == 1
    now = await states(pool)
    assert now[silent] == ("unconfirmed", expiry.UNREPORTED)
    assert now[recent][0] == "released" and now[api][0] == "released"
    assert now[printing][0] == "released"
    [event] = await emitted(pool)
    assert (event.message_type, event.job_id, event.reason) == (
        "job.unconfirmed",
        silent,
        expiry.UNREPORTED,
    )
    assert await expiry.mark_unconfirmed(pool, "job-capture") == 0  # once
    # Its heartbeats stop: past the timeout it is unconfirmed too.
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE jobs SET alive_at = now() - interval '2 minutes' WHERE job_id = $1", printing
        )
    assert await expiry.mark_unconfirmed(pool, "job-capture") == 1
    assert (await states(pool))[printing][0] == "unconfirmed"


class Backends:
    """Where `tell_backend` pushes a decision (the publisher's one call it makes)."""

    def __init__(self) -> None:
        self.told: list[str] = []

    async def publish(self, exchange, key, message, mandatory=True) -> None:
        self.told.append(key)


async def test_a_round_postgresql_rolls_back_tells_no_backend_and_says_so(pool, monkeypatch):
    """A round whose transaction PostgreSQL rolls back at its COMMIT (a statement after the
    jobs moved failed, and its error was caught) raises RolledBack: the job stays waiting,
    nothing is in the outbox, and its print server's backend is not told it was cancelled
    (asyncpg's own transaction would have returned as if committed, and told it)."""
    late = await add_job(pool, "priced", deadline="-1 s")
    async with pool.acquire() as conn:
        await conn.execute("UPDATE jobs SET print_server = 'ps-1' WHERE job_id = $1", late)
    real_close = expiry.close

    async def close_then_a_caught_error(ctx, jobs, transition):
        closed = await real_close(ctx, jobs, transition)
        with contextlib.suppress(asyncpg.PostgresError):
            await ctx.conn.execute("SELECT 1 / 0")
        return closed

    monkeypatch.setattr(expiry, "close", close_then_a_caught_error)
    backends = Backends()
    with pytest.raises(RolledBack):
        await expiry.expire_once(pool, "job-capture", backends)
    assert backends.told == []
    assert (await states(pool))[late][0] == "priced"
    assert await emitted(pool) == []

    # The next round, unhindered, closes it and tells its backend once.
    monkeypatch.setattr(expiry, "close", real_close)
    assert await expiry.expire_once(pool, "job-capture", backends) == 1
    assert (await states(pool))[late][0] == "cancelled"
    assert len(backends.told) == 1
