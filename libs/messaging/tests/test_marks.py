"""Marks follow a job from service to service: bound on the log lines of the handler that
receives them, carried on what it emits; read only from the services' exchanges.

The dispatcher runs on a real quorum queue and database; the outbox relay publishes the
emitted message through the real broker, where the test reads its header back.
"""

import asyncio
import json
import uuid
from types import SimpleNamespace

import aio_pika
import pytest
import structlog

from platen.events.jobs import JobCaptured
from platen.events.registry import decode
from platen.events.routing import COMMANDS, DESKTOP_REPLIES, EVENTS
from platen.messaging.codec import HEADER_MARKS, HEADER_VERSION
from platen.messaging.fakes import FakeContext
from platen.messaging.handling import Dispatcher, apply_in_transaction
from platen.messaging.marks import of_delivery
from platen.messaging.outbox import OutboxRelay
from platen.testing.queues import take

from .test_dispatcher import captured_body

QUEUE = "pricing.events"
TRUSTED = json.dumps({"identity": "trusted"})


def delivery(exchange, routing_key="job.captured", marks=TRUSTED):
    return SimpleNamespace(
        exchange=exchange, routing_key=routing_key, headers={HEADER_MARKS: marks}
    )


def test_marks_are_read_only_from_what_services_send():
    assert of_delivery(delivery(EVENTS)) == {"identity": "trusted"}
    assert of_delivery(delivery(COMMANDS, "ledger.job.answer")) == {"identity": "trusted"}
    # A print server may send these commands, and a desktop its replies: never marks.
    assert of_delivery(delivery(COMMANDS, "capture.submit")) == {}
    assert of_delivery(delivery(DESKTOP_REPLIES, "user.alice.answer")) == {}
    assert of_delivery(delivery("", "pricing.events")) == {}


@pytest.mark.parametrize(
    "header",
    [
        json.dumps({"identity": "desktop"}),  # not a value a mark may take
        json.dumps({"user": "bob"}),  # not a mark at all
        json.dumps(["identity", "trusted"]),
        "{not json",
        json.dumps({"identity": "trusted", "pad": "x" * 300}),  # oversized
        None,
    ],
)
def test_unknown_or_malformed_marks_are_dropped(header):
    assert of_delivery(delivery(EVENTS, marks=header)) == {}


def test_a_handler_may_only_set_known_marks():
    ctx = FakeContext()
    with pytest.raises(ValueError, match="unknown marks"):
        ctx.mark(payer="bob")
    ctx.mark(identity="trusted")
    assert ctx.marks == {"identity": "trusted"}


def amqp(body: bytes, marks: str | None) -> aio_pika.Message:
    headers = {HEADER_VERSION: 1}
    if marks is not None:
        headers[HEADER_MARKS] = marks
    return aio_pika.Message(
        body, type="job.captured", headers=headers, message_id=str(uuid.uuid4())
    )


async def test_marks_reach_the_log_and_travel_on_what_the_handler_emits(channel, pool, publisher):
    seen: list[dict] = []
    onward = await channel.declare_queue(exclusive=True)

    async def handler(ctx, event):
        seen.append(dict(structlog.contextvars.get_contextvars()))
        await ctx.emit(event, exchange="", routing_key=onward.name)

    relay = OutboxRelay(pool, publisher, "pricing")
    dispatcher = Dispatcher(
        queue=QUEUE,
        producer="pricing",
        pool=pool,
        publisher=publisher,
        relay=relay,
        handlers={JobCaptured: handler},
    )
    relay_task = asyncio.create_task(relay.run())
    try:
        q = await channel.get_queue(QUEUE)
        await q.consume(dispatcher)
        events = await channel.get_exchange(EVENTS)
        await events.publish(amqp(captured_body(), TRUSTED), routing_key="job.captured")
        marked = await next_message(onward)
        # The next message, unmarked, is not marked by the one before it.
        await events.publish(amqp(captured_body(), None), routing_key="job.captured")
        unmarked = await next_message(onward)
    finally:
        relay_task.cancel()
        await asyncio.gather(relay_task, return_exceptions=True)

    assert seen[0]["identity"] == "trusted"
    assert "job_id" in seen[0]
    assert "identity" not in seen[1]
    assert json.loads(marked.headers[HEADER_MARKS]) == {"identity": "trusted"}
    assert HEADER_MARKS not in (unmarked.headers or {})


async def test_a_mark_set_by_the_handler_travels_on_its_emits(pool):
    from platen.events.jobs import JobCaptured

    event = decode("job.captured", 1, captured_body())
    assert isinstance(event, JobCaptured)

    async def handler(ctx, msg):
        ctx.mark(identity="trusted")
        await ctx.emit(msg)

    await apply_in_transaction(pool, "svc", handler, event)
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT marks FROM svc.outbox") == TRUSTED
    structlog.contextvars.unbind_contextvars("identity")


async def next_message(queue, timeout=15.0):
    got = await take(queue, 1, timeout)
    assert got, "nothing arrived"
    return got[0]
