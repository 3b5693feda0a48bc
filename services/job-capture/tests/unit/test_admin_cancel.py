"""An administrator cancels a job (`capture.job.admin_cancel`), over the in-memory store:
only a job still waiting for a decision, never one sent to its printer or closed."""

from __future__ import annotations

import uuid

import platen.events.jobs as ev
from platen.events.system import ErrorReply
from platen.job_capture import handlers
from platen.job_capture.subscriptions import subscribe
from platen.messaging.senders import SenderCheck

from .fakes import FakeStore
from .test_handlers import ADMIN, PRINT_SERVER, a_job, context


async def test_a_waiting_job_is_cancelled_with_the_reason_and_published():
    store = FakeStore()
    ctx = context(store, ADMIN)
    held, captured = a_job(store, "priced"), a_job(store, "captured", source="api", server=None)
    reply = await handlers.on_admin_cancel(
        ctx, ev.AdminCancelJob(job_id=held.job_id, reason="printer out of toner")
    )
    assert (reply.state, reply.reason) == (
        "cancelled",
        "cancelled by an administrator: printer out of toner",
    )
    await handlers.on_admin_cancel(ctx, ev.AdminCancelJob(job_id=captured.job_id))
    assert store.jobs[held.job_id].state == store.jobs[captured.job_id].state == "cancelled"
    assert [(m.job_id, m.reason) for m in ctx.messages(ev.JobCancelled)] == [
        (held.job_id, "cancelled by an administrator: printer out of toner"),
        (captured.job_id, "cancelled by an administrator"),
    ]
    assert len(ctx.emitted) == 2  # the cancels and nothing else


async def test_a_job_at_its_printer_or_closed_is_refused_and_left_alone():
    store = FakeStore()
    ctx = context(store, ADMIN)
    jobs = {state: a_job(store, state) for state in ("released", "unconfirmed", "printed")}
    jobs["cancelled"] = a_job(store, "cancelled", reason="nobody answered")
    for state, job in jobs.items():
        reply = await handlers.on_admin_cancel(ctx, ev.AdminCancelJob(job_id=job.job_id))
        assert isinstance(reply, ErrorReply), state
        assert store.jobs[job.job_id].state == state
    released = await handlers.on_admin_cancel(
        ctx, ev.AdminCancelJob(job_id=jobs["released"].job_id)
    )
    assert "sent to its printer" in released.error and "platenctl refund" in released.error
    closed = await handlers.on_admin_cancel(ctx, ev.AdminCancelJob(job_id=jobs["printed"].job_id))
    assert closed.error == "the job is already printed"
    assert store.jobs[jobs["cancelled"].job_id].reason == "nobody answered"
    assert ctx.emitted == []


async def test_an_unknown_job_or_a_print_server_sender_is_refused():
    store = FakeStore()
    job = a_job(store, "priced")
    missing = uuid.uuid4()
    unknown = await handlers.on_admin_cancel(
        context(store, ADMIN), ev.AdminCancelJob(job_id=missing)
    )
    assert unknown.error == f"no job {missing}"
    # Who may send it is the declaration's to say, checked by the dispatcher before the
    # handler runs: platenctl only; not even the print server that submitted the job.
    check = SenderCheck("job-capture", "platen-job-capture")
    allowed = subscribe.senders[ev.AdminCancelJob]
    kind = ev.AdminCancelJob.message_type
    assert check.refusal(kind, allowed, ADMIN) is None
    refused = check.refusal(kind, allowed, PRINT_SERVER)
    assert refused is not None and PRINT_SERVER in refused
    anonymous = check.refusal(kind, allowed, None)
    assert anonymous is not None and "no AMQP user_id" in anonymous
    assert store.jobs[job.job_id].state == "priced"
