"""Applying deliveries exactly once, and dead-lettering what can never apply.

Runs the real Dispatcher on a real quorum queue (`pricing.events` of the topology, with its
delivery limit and dead-letter queue) and a real database.
"""

import asyncio
import json
import uuid
from datetime import UTC, datetime

import aio_pika
import pytest

from platen.events.jobs import JobCancelled, JobCaptured
from platen.events.registry import decode, encode
from platen.events.routing import COMMANDS, DESKTOP_REPLIES, EVENTS, REPLIES, reply_key
from platen.messaging.codec import HEADER_ERROR, HEADER_QUEUE, HEADER_VERSION
from platen.messaging.handling import Dispatcher, Rejected, outside_transaction
from platen.messaging.outbox import OutboxRelay
from platen.messaging.topology import DELIVERY_LIMIT
from platen.testing.queues import take

QUEUE = "pricing.events"


def captured_body() -> bytes:
    return encode(
        JobCaptured(
            job_id=uuid.uuid4(),
            user="alice",
            printer="lab-1",
            document_name="a.pdf",
            pages=1,
            copies=1,
            size_bytes=10,
            captured_at=datetime.now(UTC),
        )
    )


def message(body: bytes, *, type_="job.captured", version=1, message_id=None, **kw):
    headers = {} if version is None else {HEADER_VERSION: version}
    return aio_pika.Message(
        body,
        type=type_,
        headers=headers,
        message_id=message_id if message_id is not None else str(uuid.uuid4()),
        **kw,
    )


class Harness:
    def __init__(self, channel, pool, publisher, handler):
        self.channel = channel
        self.pool = pool
        self.dispatcher = Dispatcher(
            queue=QUEUE,
            producer="pricing",
            pool=pool,
            publisher=publisher,
            relay=OutboxRelay(pool, publisher, "pricing"),
            handlers={JobCaptured: handler},
        )

    async def start(self):
        q = await self.channel.get_queue(QUEUE)
        await self.channel.set_qos(prefetch_count=10)
        await q.consume(self.dispatcher)

    async def send(self, msg):
        await self.channel.default_exchange.publish(msg, routing_key=QUEUE)

    async def dead_letters(self, count, timeout=15.0):
        return await take(await self.channel.get_queue(f"{QUEUE}.dlq"), count, timeout)

    async def applied(self):
        async with self.pool.acquire() as conn:
            return [r["message_id"] for r in await conn.fetch("SELECT message_id FROM svc.applied")]


async def record(ctx, event):
    await ctx.conn.execute(
        "INSERT INTO svc.applied (message_id) VALUES ($1)", ctx.envelope.message_id
    )


async def wait_for(predicate, timeout=15.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if await predicate():
            return True
        await asyncio.sleep(0.05)
    return False


@pytest.fixture
async def harness(channel, pool, publisher):
    h = Harness(channel, pool, publisher, record)
    await h.start()
    return h


@pytest.mark.parametrize(
    ("msg_kwargs", "reason"),
    [
        ({"body": b"not json"}, "body is not JSON"),
        ({"body": b"[1, 2]"}, "not a JSON object"),
        ({"body": b'{"job_id": "nope"}', "version": 2}, "job_id"),
        ({"body": b"{}", "version": 99}, "schema version 99 is not supported"),
        ({"body": b"{}", "version": None}, "platen-schema-version"),
        ({"body": b"{}", "type_": "job.exploded"}, "unknown message type"),
        ({"body": captured_body()[:-1] + b', "free": true}'}, "free: Extra inputs"),
    ],
    ids=[
        "not-json",
        "array",
        "bad-field",
        "future-version",
        "no-version",
        "unknown-type",
        "extra-field",
    ],
)
async def test_malformed_message_is_dead_lettered_with_reason(harness, msg_kwargs, reason):
    body = msg_kwargs.pop("body")
    await harness.send(message(body, **msg_kwargs))
    # The queue goes on: a good message after the bad one is applied.
    good = message(captured_body())
    await harness.send(good)

    [dead] = await harness.dead_letters(1)
    assert reason in dead.headers[HEADER_ERROR]
    assert dead.headers[HEADER_QUEUE] == QUEUE
    assert dead.body == body
    assert await wait_for(lambda: _applied_is(harness, [good.message_id]))


async def _applied_is(harness, ids):
    return await harness.applied() == ids


async def test_a_message_is_applied_once_however_often_it_is_delivered(harness):
    body = captured_body()
    msg_id = str(uuid.uuid4())
    for _ in range(3):
        await harness.send(message(body, message_id=msg_id))
    later = message(captured_body())
    await harness.send(later)
    assert await wait_for(lambda: _applied_is(harness, [msg_id, later.message_id]))
    await asyncio.sleep(0.3)
    assert await harness.applied() == [msg_id, later.message_id]


def counted(harness, name, type_="job.captured"):
    return harness.dispatcher.metrics.registry.get_sample_value(
        name, {"queue": QUEUE, "type": type_}
    )


async def test_what_became_of_each_delivery_is_counted_by_queue_and_type(channel, pool, publisher):
    async def record_or_fail(ctx, event):
        if event.document_name == "bug.pdf":
            raise ValueError("a bug, not an outage")
        await record(ctx, event)

    h = Harness(channel, pool, publisher, record_or_fail)
    await h.start()
    body = captured_body()
    first = message(body)
    await h.send(first)
    await h.send(message(body, message_id=first.message_id))  # a duplicate: handled, skipped
    await h.send(message(b"not json"))
    await h.send(message(b"{}", type_="job.made-up"))
    await h.send(message(captured_body().replace(b"a.pdf", b"bug.pdf")))

    async def settled():
        return (
            counted(h, "platen_messages_handled_total") == 2
            and counted(h, "platen_messages_dead_lettered_total") == 2
            and counted(h, "platen_messages_dead_lettered_total", "unknown") == 1
        )

    # The buggy one is returned DELIVERY_LIMIT times, then dead-lettered with its error.
    assert await wait_for(settled, timeout=60)
    assert counted(h, "platen_messages_failed_total") == DELIVERY_LIMIT + 1
    latency = h.dispatcher.metrics.registry.get_sample_value(
        "platen_handler_seconds_count", {"type": "job.captured"}
    )
    assert latency == 2


async def test_transient_failure_is_retried_then_applied_once(channel, pool, publisher):
    attempts = []

    async def flaky(ctx, event):
        attempts.append(ctx.envelope.message_id)
        await record(ctx, event)  # rolled back with the failure below on the first try
        if len(attempts) == 1:
            raise ConnectionError("database went away")

    h = Harness(channel, pool, publisher, flaky)
    await h.start()
    msg = message(captured_body())
    await h.send(msg)
    assert await wait_for(lambda: _applied_is(h, [msg.message_id]))
    assert len(attempts) == 2
    assert await h.dead_letters(1, timeout=0.5) == []


async def test_effects_run_after_the_commit_and_only_once(channel, pool, publisher):
    seen = []

    async def with_effect(ctx, event):
        await record(ctx, event)

        async def effect():
            seen.append(await _applied_is(h, [ctx.envelope.message_id]))

        ctx.after_commit(effect)

    h = Harness(channel, pool, publisher, with_effect)
    await h.start()
    msg = message(captured_body())
    await h.send(msg)
    await h.send(message(msg.body, message_id=msg.message_id))  # a redelivery: no effect

    # Both deliveries done: each is counted after its effects have run and it is acked
    # (the row is visible before the effect runs, so waiting for it raced the effect).
    async def both_handled():
        return counted(h, "platen_messages_handled_total") == 2

    assert await wait_for(both_handled)
    assert await h.applied() == [msg.message_id]
    assert seen == [True]


async def test_a_step_outside_the_transaction_holds_no_connection_and_hands_its_result_on(
    channel, pool, publisher
):
    """Slow work (job-capture's document analysis) is done before the delivery's
    transaction opens: while it runs, no connection of the pool is taken."""
    in_use_during_step = []
    in_use_in_handler = []
    handed_on = []
    done = asyncio.Event()

    async def step(event):
        in_use_during_step.append(pool.get_size() - pool.get_idle_size())
        return f"analysed {event.job_id}"

    async def handler(ctx, event):
        handed_on.append(ctx.prepared)
        in_use_in_handler.append(pool.get_size() - pool.get_idle_size())
        await record(ctx, event)

        async def committed():
            done.set()

        ctx.after_commit(committed)

    outside_transaction(handler, step)
    h = Harness(channel, pool, publisher, handler)
    await h.start()
    msg = message(captured_body())
    await h.send(msg)
    await asyncio.wait_for(done.wait(), 15)  # not polling the database meanwhile
    assert await h.applied() == [msg.message_id]
    job_id = json.loads(msg.body)["job_id"]
    assert in_use_during_step == [0]
    assert in_use_in_handler == [1]
    assert handed_on == [f"analysed {job_id}"]


async def test_rejected_by_the_handler_is_dead_lettered(channel, pool, publisher):
    async def refuse(ctx, event):
        raise Rejected("printer is on fire")

    h = Harness(channel, pool, publisher, refuse)
    await h.start()
    await h.send(message(captured_body()))
    [dead] = await h.dead_letters(1)
    assert dead.headers[HEADER_ERROR] == "printer is on fire"


async def test_a_message_that_always_fails_stops_at_the_delivery_limit(channel, pool, publisher):
    calls = []

    async def broken(ctx, event):
        calls.append(1)
        if ctx.envelope.message_id == "poison":
            raise RuntimeError("bug")
        await record(ctx, event)

    h = Harness(channel, pool, publisher, broken)
    await h.start()
    await h.send(message(captured_body(), message_id="poison"))
    good = message(captured_body())
    await h.send(good)
    # Dead-lettered on its last allowed delivery, with the error; it never loops forever
    # or blocks the queue.
    [dead] = await h.dead_letters(1, timeout=60)
    assert dead.message_id == "poison"
    assert dead.headers[HEADER_QUEUE] == QUEUE
    error = dead.headers[HEADER_ERROR]
    error = error.decode() if isinstance(error, bytes) else error
    assert f"failed on {DELIVERY_LIMIT + 1} deliveries" in error
    assert "RuntimeError('bug')" in error
    assert await wait_for(lambda: _applied_is(h, [good.message_id]))
    assert len(calls) == DELIVERY_LIMIT + 1 + 1  # every delivery of the poison, then the good one


async def test_a_database_outage_longer_than_the_delivery_limit_dead_letters_nothing(
    channel, pool, publisher
):
    # Each failure stands for the database being unreachable once: more of them than the
    # queue's delivery limit. The message is held, never returned to the queue, so the
    # outage costs it no delivery, and it is applied once the database answers.
    outages = DELIVERY_LIMIT + 2
    attempts = []

    async def database_down(ctx, event):
        attempts.append(1)
        if len(attempts) <= outages:
            raise ConnectionRefusedError("database is down")
        await record(ctx, event)

    h = Harness(channel, pool, publisher, database_down)
    await h.start()
    msg = message(captured_body())
    await h.send(msg)
    assert await wait_for(lambda: _applied_is(h, [msg.message_id]), timeout=120)
    assert len(attempts) == outages + 1
    assert await h.dead_letters(1, timeout=0.5) == []


async def consume_desktop_replies(channel, pool, publisher):
    """notification.replies handled by a Dispatcher with no handlers (every message there
    fails, the way a desktop's bad answer does); the exchange desktops publish on."""
    dispatcher = Dispatcher(
        queue="notification.replies",
        producer="notification",
        pool=pool,
        publisher=publisher,
        relay=OutboxRelay(pool, publisher, "notification"),
        handlers={},
    )
    await (await channel.get_queue("notification.replies")).consume(dispatcher)
    return await channel.get_exchange(DESKTOP_REPLIES)


async def reply_queue(channel, user: str):
    """A requester's reply queue, bound to `platen.replies` under `user`'s key for it, and
    that key (what a request of `user`'s names as its `reply_to`)."""
    queue = await channel.declare_queue(exclusive=True)
    key = reply_key(user, queue.name)
    await queue.bind(REPLIES, routing_key=key)
    return queue, key


async def first_message(queue, timeout: float = 15.0):
    """The first message to arrive on `queue` (taken off it), or None."""
    for _ in range(int(timeout / 0.05)):
        raw = await queue.get(fail=False)
        if raw is not None:
            return raw
        await asyncio.sleep(0.05)
    return None


async def test_what_a_desktop_sends_is_never_answered_at_its_reply_to(channel, pool, publisher):
    # A desktop's malformed answer, with reply_to naming another user's desktop queue:
    # it is dead-lettered, and nothing is written into that queue.
    victim = await channel.declare_queue(exclusive=True)
    replies = await consume_desktop_replies(channel, pool, publisher)
    await replies.publish(
        message(b"\x00 a notice of my own", type_="desktop.job_answer", reply_to=victim.name),
        routing_key="user.mallory.answer",
    )
    dead = await first_message(await channel.get_queue("notification.replies.dlq"))
    assert dead is not None and "not JSON" in dead.headers[HEADER_ERROR]
    await asyncio.sleep(0.5)
    assert await victim.get(fail=False) is None


async def test_a_malformed_request_is_answered_with_the_reason(channel, pool, publisher, me):
    asker, reply_to = await reply_queue(channel, me)
    h = Harness(channel, pool, publisher, record)
    h.dispatcher.queue = "pricing.commands"
    q = await channel.get_queue("pricing.commands")
    await q.consume(h.dispatcher)
    commands = await channel.get_exchange(COMMANDS)
    await commands.publish(
        message(b"{broken", type_="pricing.printer.add", reply_to=reply_to, user_id=me),
        routing_key="pricing.printer.add",
    )
    raw = await first_message(asker)
    assert raw is not None and raw.type == "error"
    assert "not JSON" in json.loads(raw.body)["error"]


@pytest.mark.parametrize("case", ["another user's key", "no user_id", "a longer user's key"])
async def test_a_request_is_answered_only_at_a_key_of_its_own_senders(
    channel, pool, publisher, me, case
):
    # The key of another identity; of anybody, when the request does not say who sent it;
    # of a user whose name the sender's is a prefix of, dot and all (encoded, the sender's
    # `reply.<me>.` is no prefix of `reply.<me>%2Ex.`).
    reply_user = {"another user's key": "platen-admin"}.get(case, f"{me}.x")
    user_id = None if case == "no user_id" else me
    other, reply_to = await reply_queue(channel, reply_user)
    h = Harness(channel, pool, publisher, record)
    h.dispatcher.queue = "pricing.commands"
    await (await channel.get_queue("pricing.commands")).consume(h.dispatcher)
    commands = await channel.get_exchange(COMMANDS)
    await commands.publish(
        message(b"{broken", type_="pricing.printer.add", reply_to=reply_to, user_id=user_id),
        routing_key="pricing.printer.add",
    )
    # Handled (dead-lettered with its reason), and nothing sent to the other key.
    dead = await first_message(await channel.get_queue("pricing.commands.dlq"))
    assert dead is not None and "not JSON" in dead.headers[HEADER_ERROR]
    await asyncio.sleep(0.5)
    assert await other.get(fail=False) is None


async def test_a_dead_lettered_answer_keeps_no_pin(channel, pool, publisher):
    replies = await consume_desktop_replies(channel, pool, publisher)
    answer = {"job_id": str(uuid.uuid4()), "user": "bob", "action": "print", "pin": "48213"}
    await replies.publish(
        message(json.dumps({**answer, "free": True}).encode(), type_="desktop.job_answer"),
        routing_key="user.bob.answer",
    )
    dead = await first_message(await channel.get_queue("notification.replies.dlq"))
    assert dead is not None and "free" in dead.headers[HEADER_ERROR]
    assert b"48213" not in dead.body
    assert json.loads(dead.body)["user"] == "bob"  # the rest is there to read


async def test_a_delivery_its_handler_does_not_admit_is_acked_with_no_work_done(
    channel, pool, publisher
):
    async def handler(ctx, event):
        await record(ctx, event)

    turned_away = []

    def admit(routing_key, event):
        turned_away.append(event.job_id)
        return len(turned_away) > 1  # the first is turned away, the rest let in

    handler.admit = admit
    h = Harness(channel, pool, publisher, handler)
    await h.start()
    first, second = message(captured_body()), message(captured_body())
    await h.send(first)
    await h.send(second)
    assert await wait_for(lambda: _applied(h, second.message_id))
    assert await h.applied() == [second.message_id]
    async with pool.acquire() as conn:  # no inbox row: nothing was stored for it
        claimed = await conn.fetch("SELECT message_id FROM svc.inbox")
    assert [r["message_id"] for r in claimed] == [second.message_id]
    # Settled, not returned: given back, it would have been let in and applied by now.
    assert len(turned_away) == 2


async def _applied(h, message_id) -> bool:
    return message_id in await h.applied()


async def test_the_messages_a_delivery_emits_are_one_outbox_statement_in_their_order(
    channel, pool, publisher
):
    """Two events emitted by one handler: written in one INSERT before the commit (not a
    round trip each), and published in the order they were emitted."""
    out = await channel.declare_queue(exclusive=True)
    await out.bind(EVENTS, "job.cancelled")
    statements: list[str] = []  # the handler's connection's, from its first statement on

    def logged(record) -> None:
        statements.append(record.query)

    async def emit_two(ctx, event):
        ctx.conn.add_query_logger(logged)  # left on it: the pool closes it after the test
        for reason in ("first", "second"):
            await ctx.emit(
                JobCancelled(
                    job_id=event.job_id,
                    user=event.user,
                    printer=event.printer,
                    document_name=event.document_name,
                    reason=reason,
                )
            )

    h = Harness(channel, pool, publisher, emit_two)
    await h.start()
    await h.send(message(captured_body()))

    async def kept():
        async with pool.acquire() as conn:
            return await conn.fetchval("SELECT count(*) FROM svc.outbox") == 2

    assert await wait_for(kept)
    assert await OutboxRelay(pool, publisher, "pricing").flush_once() == 2
    received = await take(out, 2, 15)
    assert [decode(r.type, 1, r.body).reason for r in received] == ["first", "second"]
    assert len([s for s in statements if "INSERT INTO outbox" in s]) == 1, statements
