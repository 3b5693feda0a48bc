"""The job log (`capture.jobs.list`, `platenctl jobs`): what each job was priced for and
the account it was charged to, with the user's comment, and the filters an administrator
reads it by; over the in-memory store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import platen.events.jobs as ev
from platen.job_capture import handlers

from .fakes import FakeStore
from .test_handlers import ABOUT, ADMIN, a_job, context


async def test_a_job_shows_its_sides_account_amount_and_comment():
    store = FakeStore()
    ctx = context(store, ADMIN)
    job = a_job(store, "captured", source="api", server=None, duplex=True)
    await handlers.on_priced(
        ctx,
        ev.JobPriced(
            job_id=job.job_id,
            **ABOUT,
            sides=5,
            color_sides=2,
            grayscale_sides=3,
            copies=1,
            cost=D("0.70"),
            duplex=True,
        ),
    )
    await handlers.on_authorized(
        ctx,
        ev.JobAuthorized(
            job_id=job.job_id,
            user="alice",
            account="shared:physics",
            amount=D("0.63"),
            comment="grant 4711",
        ),
    )
    [row] = (await handlers.on_list(ctx, ev.ListJobs())).jobs
    assert (row.sides, row.color_sides, row.grayscale_sides, row.duplex) == (5, 2, 3, True)
    assert (row.account, row.amount, row.comment) == ("shared:physics", D("0.63"), "grant 4711")
    assert (row.state, row.cost, row.source) == ("printed", D("0.70"), "api")


async def test_the_log_is_filtered_by_printer_account_state_and_dates():
    store = FakeStore()
    ctx = context(store, ADMIN)
    now = datetime.now(UTC)
    old, new = a_job(store, "printed"), a_job(store, "printed")
    store.jobs[old.job_id].submitted_at = now - timedelta(days=40)
    store.jobs[new.job_id].submitted_at = now - timedelta(hours=1)
    other = a_job(store, "denied")
    store.jobs[other.job_id].printer = "hall"
    await store.note_charge(old.job_id, "personal:alice", D("0.30"), None)
    await store.note_charge(new.job_id, "shared:lab", D("0.30"), None)

    async def ids(**filters) -> list:
        return [j.job_id for j in (await handlers.on_list(ctx, ev.ListJobs(**filters))).jobs]

    assert await ids(printer="hall") == [other.job_id]
    assert await ids(account="shared:lab") == [new.job_id]
    assert await ids(since=now - timedelta(days=1), state="printed") == [new.job_id]
    assert await ids(until=now - timedelta(days=1)) == [old.job_id]
    cut = await handlers.on_list(ctx, ev.ListJobs(limit=2))
    assert len(cut.jobs) == 2 and cut.truncated
    assert not (await handlers.on_list(ctx, ev.ListJobs(limit=3))).truncated


def test_a_list_query_or_reply_of_an_older_version_still_reads():
    from platen.events.registry import decode

    query = decode("capture.jobs.list", 2, b'{"user": "alice", "limit": 5, "state": null}')
    assert (query.user, query.printer, query.since) == ("alice", None, None)
    reply = decode("capture.jobs.list.reply", 2, b'{"jobs": []}')
    assert reply.truncated is False
    authorized = decode(
        "job.authorized",
        1,
        b'{"job_id": "6f1c1f8e-4d7e-4a7e-9a55-1b2f3c4d5e6f", "user": "a", "account": "x",'
        b' "amount": "0.30"}',
    )
    assert authorized.comment is None
