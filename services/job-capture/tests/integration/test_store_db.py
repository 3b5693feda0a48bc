"""job-capture's Store against a real PostgreSQL: a job saved and loaded is the same job,
and each method writes only what it says."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from platen.events.jobs import SubmitJob
from platen.job_capture.analysis import Analysis
from platen.job_capture.domain import Job
from platen.job_capture.store import Store

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def captured(source: str = "api") -> Job:
    cmd = SubmitJob(
        job_id=uuid.uuid4(),
        user="alice",
        printer="lab",
        document_name="a.pdf",
        document=base64.b64encode(b"%PDF-1.7"),
        source=source,
        copies=2,
        duplex=True,
        origin_host="10.0.0.7",
        cups_job_id=41,
    )
    analysis = Analysis(format="pdf", pages=3, color_pages=(2,), page_sizes=("A4",) * 3)
    print_server = "lab-server" if source == "cups" else None
    return Job.capture(
        cmd,
        now=NOW,
        deadline_seconds=600,
        identity="unverified",
        print_server=print_server,
        analysis=analysis,
    )


async def test_a_job_comes_back_as_it_was_saved_and_moves_only_through_move(pool):
    job = captured()
    async with pool.acquire() as conn, conn.transaction():
        store = Store(conn)
        await store.add(job)
        await store.spool(job.job_id, b"%PDF-1.7")
        loaded = await store.get(job.job_id)
        same = [f for f in vars(job) if f not in ("document", "events")]
        assert {f: getattr(loaded, f) for f in same} == {f: getattr(job, f) for f in same}
        assert await store.owner(job.job_id) == (True, None)
        assert await store.owner(uuid.uuid4()) == (False, None)
        loaded.price(Decimal("0.60"))
        loaded.release(NOW)  # a program's job: printed, its document dropped
        await store.move(loaded)
        assert await store.status(job.job_id) == ("printed", None)
        assert await conn.fetchval("SELECT cost FROM jobs WHERE job_id = $1", job.job_id) == (
            Decimal("0.60")
        )
        assert await conn.fetchval("SELECT count(*) FROM spool") == 0
        [row] = await store.recent(user="alice", state="printed", limit=10)
        assert (row["job_id"], row["pages"], row["copies"]) == (job.job_id, 3, 2)
        assert await store.recent(user="bob", state=None, limit=10) == []


async def test_heartbeats_reasons_and_queues_modes(pool):
    job = captured("cups")
    async with pool.acquire() as conn, conn.transaction():
        store = Store(conn)
        await store.add(job)
        assert (await store.get(job.job_id)).print_server == "lab-server"
        await store.keep_alive(job)
        assert (await store.get(job.job_id)).printing_started
        job.reason = "noted"
        await store.note_reason(job)
        assert await store.status(job.job_id) == ("captured", "noted")
        await store.set_identity_mode("lab", "authenticated")
        await store.set_identity_mode("lab", "trusted")
        await store.set_identity_mode("hall", "authenticated")
        assert await store.identity_mode("lab") == "trusted"
        assert await store.identity_mode("nowhere") is None
        assert await store.identity_modes(None) == [("hall", "authenticated"), ("lab", "trusted")]
        assert await store.identity_modes("trusted") == [("lab", "trusted")]
        await store.cancel_before_capture(job.job_id, "cancelled in CUPS")
        await store.cancel_before_capture(job.job_id, "twice")  # harmless
        assert await store.cancelled_before_capture(job.job_id)
        assert not await store.cancelled_before_capture(uuid.uuid4())


async def test_pruning_deletes_ended_jobs_and_keeps_every_job_not_ended(pool):
    ended, waiting, released = captured(), captured(), captured("cups")
    async with pool.acquire() as conn, conn.transaction():
        store = Store(conn)
        for job in (ended, waiting, released):
            await store.add(job)
            await store.spool(job.job_id, b"%PDF-1.7")
        for job in (ended, released):
            job.price(Decimal("0.60"))
            job.release(NOW)  # the program's job prints at once; the CUPS job waits
            await store.move(job)
        await store.cancel_before_capture(uuid.uuid4(), "cancelled in CUPS")
    async with pool.acquire() as conn:
        assert await Store(conn).status(ended.job_id) == ("printed", None)
        later = datetime.now(UTC) + timedelta(seconds=1)
        assert await Store(conn).prune(later) == {
            "jobs": 1,
            "spool": 0,  # dropped when it printed
            "cancelled_before_capture": 1,
        }
        left = {r["job_id"]: r["state"] for r in await conn.fetch("SELECT * FROM jobs")}
        assert left == {waiting.job_id: "captured", released.job_id: "released"}
        assert await conn.fetchval("SELECT count(*) FROM spool") == 2  # theirs still there
        assert await Store(conn).prune(later) == {
            "jobs": 0,
            "spool": 0,
            "cancelled_before_capture": 0,
        }
