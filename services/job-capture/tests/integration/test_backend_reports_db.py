"""What the CUPS backend reports about a released job, against a real PostgreSQL: a cancel
before printing, heartbeats, and outcomes that come after the release timeout."""

from __future__ import annotations

import asyncio
import base64
import uuid

from platen.events.jobs import CancelJob, KeepJobAlive, ReportOutcome, SubmitJob
from platen.events.system import ErrorReply
from platen.job_capture import handlers
from platen.job_capture.analysis import Analysis
from platen.job_capture.backend_reports import INTERRUPTED, on_cancel, on_heartbeat
from platen.job_capture.store import Store
from platen.messaging.handling import apply_in_transaction
from platen.testing.documents import make_pdf

# The job rows and the outbox, as the deadline tests use them (the pool: conftest.py).
from .test_expiry_db import add_job as add_any_job
from .test_expiry_db import emitted, states

PRODUCER = "job-capture"
# The broker-checked sender of the CUPS backend's reports: a print server's own identity.
PRINT_SERVER = "platen-print-server.test"


async def apply(pool, handler, message):
    return await apply_in_transaction(
        pool, PRODUCER, handler, message, user_id=PRINT_SERVER, store=Store
    )


async def add_job(pool, state: str):
    """A CUPS job of print server `test` (PRINT_SERVER), as far as `state`."""
    job_id = await add_any_job(pool, state)
    async with pool.acquire() as conn:
        await conn.execute("UPDATE jobs SET print_server = 'test' WHERE job_id = $1", job_id)
    return job_id


async def add_priced_job(pool, state: str):
    """A job as far as `state`, with the analysis a `job.printed` needs."""
    job_id = await add_job(pool, state)
    async with pool.acquire() as conn:
        await conn.execute("UPDATE jobs SET pages = 3 WHERE job_id = $1", job_id)
    return job_id


async def alive_at(pool, job_id):
    async with pool.acquire() as conn:
        return await conn.fetchval("SELECT alive_at FROM jobs WHERE job_id = $1", job_id)


async def test_a_cancel_before_printing_cancels_uncharged(pool):
    waiting = await add_job(pool, "priced")
    released = await add_job(pool, "released")
    for job_id in (waiting, released):
        reply = await apply(pool, on_cancel, CancelJob(job_id=job_id))
        assert reply.state == "cancelled"
    now = await states(pool)
    assert now[waiting] == now[released] == ("cancelled", "cancelled in CUPS")
    assert sorted((e.message_type, e.job_id) for e in await emitted(pool)) == sorted(
        [("job.cancelled", waiting), ("job.cancelled", released)]
    )


async def test_a_cancel_once_printing_started_changes_nothing(pool):
    printing = await add_job(pool, "released")
    assert (await apply(pool, on_heartbeat, KeepJobAlive(job_id=printing))).state == "released"
    assert await alive_at(pool, printing) is not None
    charged = await add_job(pool, "unconfirmed")
    for job_id, state in ((printing, "released"), (charged, "unconfirmed")):
        reply = await apply(pool, on_cancel, CancelJob(job_id=job_id))
        assert reply.state == state
    now = await states(pool)
    assert (now[printing][0], now[charged][0]) == ("released", "unconfirmed")
    assert await emitted(pool) == []


async def test_a_heartbeat_keeps_only_a_released_job_alive(pool):
    done = await add_job(pool, "printed")
    assert (await apply(pool, on_heartbeat, KeepJobAlive(job_id=done))).state == "printed"
    assert await alive_at(pool, done) is None
    missing = uuid.uuid4()
    assert (await apply(pool, on_heartbeat, KeepJobAlive(job_id=missing))).state == "unknown"


def submission(job_id: uuid.UUID) -> SubmitJob:
    return SubmitJob(
        job_id=job_id,
        user="alice",
        printer="lab",
        document_name="a.pdf",
        document=base64.b64encode(make_pdf(1)),
        source="cups",
    )


async def test_a_cancel_that_overtakes_its_submission_drops_the_submission(pool):
    job_id = uuid.uuid4()
    assert (await apply(pool, on_cancel, CancelJob(job_id=job_id))).state == "unknown"
    await apply(pool, handlers.on_submit, submission(job_id))
    assert job_id not in await states(pool)  # never captured, so never released or charged
    assert await emitted(pool) == []


async def test_a_cancel_while_the_submission_is_recorded_waits_for_it_and_cancels_the_job(
    pool, monkeypatch
):
    recording, go_on = asyncio.Event(), asyncio.Event()
    identify = handlers.identify

    async def held_in_its_transaction(ctx, cmd):
        recording.set()
        await go_on.wait()
        return await identify(ctx, cmd)

    monkeypatch.setattr(handlers, "identify", held_in_its_transaction)
    job_id = uuid.uuid4()
    submit = asyncio.create_task(apply(pool, handlers.on_submit, submission(job_id)))
    await recording.wait()  # the submission's transaction holds the job's lock
    cancel = asyncio.create_task(apply(pool, on_cancel, CancelJob(job_id=job_id)))
    async with pool.acquire() as conn:
        for _ in range(500):  # until the cancel waits for that lock
            if await conn.fetchval(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            ):
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError("the cancel never waited for the job's lock")
    go_on.set()
    reply = await cancel
    await submit
    assert reply.state == "cancelled"
    assert (await states(pool))[job_id] == ("cancelled", "cancelled in CUPS")
    assert [e.message_type for e in await emitted(pool)] == ["job.captured", "job.cancelled"]


async def test_a_cancel_during_the_analysis_waits_for_nothing_and_drops_the_submission(
    pool, monkeypatch
):
    """The analysis runs before the submission's transaction and holds no lock: a cancel
    meanwhile is answered at once, and the submission, once analysed, is dropped."""
    analysing, go_on = asyncio.Event(), asyncio.Event()

    async def slow(document: bytes, owner: str = "") -> Analysis:
        analysing.set()
        await go_on.wait()
        return Analysis(format="pdf", pages=1, color_pages=(), page_sizes=("A4",))

    monkeypatch.setattr(handlers, "analyse", slow)
    job_id = uuid.uuid4()
    submit = asyncio.create_task(apply(pool, handlers.on_submit, submission(job_id)))
    await analysing.wait()
    assert (await apply(pool, on_cancel, CancelJob(job_id=job_id))).state == "unknown"
    go_on.set()
    await submit
    assert job_id not in await states(pool)  # never captured, so never released or charged
    assert await emitted(pool) == []


async def test_interrupted_and_late_outcomes(pool):
    interrupted = await add_priced_job(pool, "released")
    late_printed = await add_priced_job(pool, "unconfirmed")
    late_failed = await add_priced_job(pool, "unconfirmed")
    await apply(
        pool, handlers.on_outcome, ReportOutcome(job_id=interrupted, printed=True, interrupted=True)
    )
    await apply(pool, handlers.on_outcome, ReportOutcome(job_id=late_printed, printed=True))
    reply = await apply(
        pool,
        handlers.on_outcome,
        ReportOutcome(job_id=late_failed, printed=False, reason="status 1"),
    )
    assert reply.state == "unconfirmed"
    now = await states(pool)
    assert now[interrupted] == ("printed", INTERRUPTED)
    assert now[late_printed][0] == "printed"
    assert now[late_failed][0] == "unconfirmed"
    assert "after the release timeout" in now[late_failed][1] and "status 1" in now[late_failed][1]
    # A job.printed for each printed one (the ledger charges once per job); nothing for
    # the late failure, which stays charged for an administrator to judge.
    assert sorted((e.message_type, e.job_id) for e in await emitted(pool)) == sorted(
        [("job.printed", interrupted), ("job.printed", late_printed)]
    )


async def test_another_print_servers_job_can_be_neither_cancelled_nor_kept_alive(pool):
    theirs = await add_any_job(pool, "released")
    async with pool.acquire() as conn:
        await conn.execute("UPDATE jobs SET print_server = 'other' WHERE job_id = $1", theirs)
    cancel = await apply(pool, on_cancel, CancelJob(job_id=theirs))
    heartbeat = await apply(pool, on_heartbeat, KeepJobAlive(job_id=theirs))
    for reply in (cancel, heartbeat):
        assert isinstance(reply, ErrorReply)
        assert reply.error == "this job was not submitted by this print server"
    assert (await states(pool))[theirs][0] == "released"
    assert await alive_at(pool, theirs) is None
    assert await emitted(pool) == []
