"""Capture under attack, against a real PostgreSQL: hostile documents are denied with the
reason the user sees (job.denied), while other users' normal jobs, submitted during the
attack, are captured first, even with one database connection for everything: the
analysis holds neither a connection nor a transaction."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from platen.job_capture import isolation
from platen.job_capture.isolation import TOO_LONG, IsolatedAnalyser, Limits
from platen.testing.databases import service_pool
from platen.testing.documents import make_pdf

from .. import hostile
from ..conftest import MIGRATIONS
from .test_capture_db import submit as submit_as_cups

DEADLINE = 10.0


@pytest.fixture
async def one_connection(database_url):
    async with service_pool(
        database_url, "job-capture", "job_capture", MIGRATIONS, min_size=1, max_size=1
    ) as pool:
        yield pool


@pytest.fixture(autouse=True)
def analyser(monkeypatch):
    limits = Limits(timeout=DEADLINE, memory_bytes=384 * 2**20, workers=4, workers_per_owner=2)
    monkeypatch.setattr(isolation, "_default", IsolatedAnalyser(limits))


async def submit(pool, user: str, document: bytes) -> uuid.UUID:
    return await submit_as_cups(pool, document, user=user)


async def test_normal_jobs_during_an_attack_are_captured_and_the_attack_denied(one_connection):
    pool = one_connection
    attack = {
        asyncio.create_task(submit(pool, "mallory", hostile.INFINITE_LOOP_PS)): TOO_LONG.format(
            DEADLINE
        ),
        asyncio.create_task(submit(pool, "mallory", hostile.nested_objects_pdf())): (
            "the PDF is damaged or truncated"
        ),
        asyncio.create_task(submit(pool, "trudy", hostile.INFINITE_LOOP_PS)): TOO_LONG.format(
            DEADLINE
        ),
    }
    await asyncio.sleep(0.2)  # the attack is under way
    normal = [
        asyncio.create_task(submit(pool, user, make_pdf(pages)))
        for user, pages in (("alice", 1), ("bob", 3), ("carol", 2), ("alice", 2))
    ]
    await asyncio.gather(*normal)
    endless = [task for task, reason in attack.items() if reason.startswith("the document takes")]
    # Every normal job was recorded while the endless documents were still being analysed.
    assert not any(task.done() for task in endless)
    await asyncio.gather(*attack)

    async with pool.acquire() as conn:
        jobs = {r["job_id"]: r for r in await conn.fetch("SELECT * FROM jobs")}
        bodies = await conn.fetch("SELECT body FROM outbox WHERE message_type = 'job.denied'")
        denied = {
            body["job_id"]: body["reason"] for body in (json.loads(r["body"]) for r in bodies)
        }
    for task in normal:
        assert jobs[task.result()]["state"] == "captured"
    for task, reason in attack.items():
        job = jobs[task.result()]
        assert (job["state"], job["reason"]) == ("denied", reason)
        assert denied[str(task.result())] == reason
