"""Deliveries handled in batches: one transaction for several, each still exactly once.

The real Dispatcher behind a Batcher, on a real quorum queue (`pricing.events`, with its
delivery limit and dead-letter queue) and a real database. Every handler here records its
message and the id of the transaction it ran in, so a test can see which deliveries were
applied together.
"""

import asyncio

import aio_pika
import pytest

from platen.events.jobs import JobCaptured
from platen.events.registry import decode
from platen.messaging.batching import Batcher, apply_batch_in_transaction
from platen.messaging.handling import Dispatcher, Rejected, apply_in_transaction
from platen.messaging.outbox import OutboxRelay
from platen.messaging.topology import DELIVERY_LIMIT
from platen.testing.queues import take

from .test_dispatcher import QUEUE, captured_body, message, wait_for

# Long enough that every delivery sent before consuming starts is in the first batch.
LINGER = 0.5


async def record(ctx, event):
    await ctx.conn.execute(
        "INSERT INTO svc.applied (message_id, note) VALUES ($1, txid_current()::text)",
        ctx.envelope.message_id,
    )


class BatchHarness:
    def __init__(self, channel, pool, publisher, handler, *, size=10, store=None):
        self.channel = channel
        self.pool = pool
        self.dispatcher = Dispatcher(
            queue=QUEUE,
            producer="pricing",
            pool=pool,
            publisher=publisher,
            relay=OutboxRelay(pool, publisher, "pricing"),
            handlers={JobCaptured: handler},
            store=store,
        )
        self.batcher = Batcher(self.dispatcher, size=size, linger=LINGER)
        self.size = size
        self.worker = None

    async def start(self):
        q = await self.channel.get_queue(QUEUE)
        await self.channel.set_qos(prefetch_count=self.size)
        self.worker = asyncio.create_task(self.batcher.run())
        await q.consume(self.batcher)

    async def stop(self):
        self.worker.cancel()
        returning = list(self.batcher.in_back_off)
        for task in returning:  # a failed delivery still in its back-off
            task.cancel()
        await asyncio.gather(self.worker, *returning, return_exceptions=True)

    async def send(self, msg):
        await self.channel.default_exchange.publish(msg, routing_key=QUEUE)

    async def applied(self) -> list[tuple[str, str]]:
        """(message id, transaction id) of each application, in the order applied."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch("SELECT message_id, note FROM svc.applied ORDER BY seq")
        return [(r["message_id"], r["note"]) for r in rows]

    async def ids(self) -> list[str]:
        return [m for m, _ in await self.applied()]

    async def dead_letters(self, count, timeout=15.0):
        return await take(await self.channel.get_queue(f"{QUEUE}.dlq"), count, timeout)

    async def queue_empty(self) -> bool:
        # A passive declare answers with the ready count; unacked deliveries would come
        # back here once the consumer's channel closed.
        q = await self.channel.declare_queue(QUEUE, passive=True)
        return q.declaration_result.message_count == 0


@pytest.fixture(autouse=True)
async def ordered(pool):
    async with pool.acquire() as conn:
        await conn.execute("ALTER TABLE svc.applied ADD COLUMN seq bigserial")


@pytest.fixture
async def harnesses():
    made = []
    yield made
    for h in made:
        await h.stop()


async def started(harnesses, channel, pool, publisher, handler, **kw):
    h = BatchHarness(channel, pool, publisher, handler, **kw)
    harnesses.append(h)
    await h.start()
    return h


async def test_ready_deliveries_are_applied_in_one_transaction_in_their_order(
    harnesses, channel, pool, publisher
):
    h = BatchHarness(channel, pool, publisher, record)
    harnesses.append(h)
    sent = [message(captured_body()) for _ in range(6)]
    for msg in sent:
        await h.send(msg)
    await h.start()
    assert await wait_for(lambda: _count_is(h, 6))
    applied = await h.applied()
    assert [m for m, _ in applied] == [m.message_id for m in sent]
    assert len({tx for _, tx in applied}) == 1  # one transaction for all six

    async def all_six_counted() -> bool:
        # Counted as each is acked, after the commit that made the rows visible.
        value = h.dispatcher.metrics.registry.get_sample_value(
            "platen_messages_handled_total", {"queue": QUEUE, "type": "job.captured"}
        )
        return value == 6

    assert await wait_for(all_six_counted)


async def test_a_duplicate_in_a_batch_or_in_a_later_batch_is_applied_once(
    harnesses, channel, pool, publisher
):
    h = BatchHarness(channel, pool, publisher, record)
    harnesses.append(h)
    first, second = message(captured_body()), message(captured_body())
    await h.send(first)
    await h.send(message(first.body, message_id=first.message_id))  # in the same batch
    await h.send(second)
    await h.start()
    assert await wait_for(lambda: _count_is(h, 2))
    await h.send(message(first.body, message_id=first.message_id))  # in a later batch
    later = message(captured_body())
    await h.send(later)
    assert await wait_for(lambda: _count_is(h, 3))
    await asyncio.sleep(0.3)
    assert await h.ids() == [first.message_id, second.message_id, later.message_id]
    assert await wait_for(h.queue_empty)  # the duplicates were acked, not left


async def test_a_poison_message_is_isolated_and_the_rest_of_its_batch_applied_once(
    harnesses, channel, pool, publisher
):
    calls: dict[str, int] = {}

    async def broken(ctx, event):
        calls[ctx.envelope.message_id] = calls.get(ctx.envelope.message_id, 0) + 1
        await record(ctx, event)  # rolled back with the whole batch when the poison fails
        if ctx.envelope.message_id == "poison":
            raise RuntimeError("bug")

    h = BatchHarness(channel, pool, publisher, broken)
    harnesses.append(h)
    before = message(captured_body())
    after = message(captured_body())
    await h.send(before)
    await h.send(message(captured_body(), message_id="poison"))
    await h.send(after)
    await h.start()
    # Dead-lettered on its last allowed delivery with its error, as it would be alone.
    [dead] = await h.dead_letters(1, timeout=60)
    assert dead.message_id == "poison"
    error = dead.headers["platen-error"]
    error = error.decode() if isinstance(error, bytes) else error
    assert f"failed on {DELIVERY_LIMIT + 1} deliveries" in error
    assert "RuntimeError('bug')" in error
    # The others: applied once each, in their order, though their first try rolled back.
    assert await wait_for(lambda: _count_is(h, 2))
    assert await h.ids() == [before.message_id, after.message_id]
    assert calls["poison"] == DELIVERY_LIMIT + 1 + 1  # its try in the batch, then alone
    assert await wait_for(h.queue_empty)


async def test_healthy_messages_flow_while_a_failing_one_waits_out_its_back_off(
    harnesses, channel, pool, publisher
):
    """A failed delivery waits before it goes back to the queue (so a poison message does
    not loop through the broker at full speed); the batch worker does not wait with it.
    The back-off is made far longer than the test waits for the healthy messages: if the
    worker slept through it, they would not be applied in time."""
    calls: dict[str, int] = {}

    async def broken(ctx, event):
        calls[ctx.envelope.message_id] = calls.get(ctx.envelope.message_id, 0) + 1
        if ctx.envelope.message_id.startswith("poison"):
            raise RuntimeError("bug")
        await record(ctx, event)

    h = BatchHarness(channel, pool, publisher, broken)
    harnesses.append(h)
    h.dispatcher.back_off = 120.0
    await h.send(message(captured_body(), message_id="poison"))
    await h.start()

    async def poison_failed() -> bool:
        return calls.get("poison") == 1 and bool(h.batcher.in_back_off)

    assert await wait_for(poison_failed)
    healthy = [message(captured_body()) for _ in range(5)]
    for msg in healthy:
        await h.send(msg)
    assert await wait_for(lambda: _count_is(h, 5), timeout=30)
    assert await h.ids() == [m.message_id for m in healthy]
    # The poison is still in its back-off: not yet returned, so not yet tried again.
    assert calls["poison"] == 1
    [returning] = h.batcher.in_back_off
    assert not returning.done()
    # In a second batch, a healthy message behind a failing one is applied as well.
    await h.send(message(captured_body(), message_id="poison-2"))
    after = message(captured_body())
    await h.send(after)
    assert await wait_for(lambda: _count_is(h, 6), timeout=30)
    assert (await h.ids())[-1] == after.message_id


async def test_a_message_rejected_in_a_batch_is_dead_lettered_and_the_rest_applied(
    harnesses, channel, pool, publisher
):
    async def refuse_one(ctx, event):
        await record(ctx, event)
        if ctx.envelope.message_id == "refused":
            raise Rejected("printer is on fire")

    h = BatchHarness(channel, pool, publisher, refuse_one)
    harnesses.append(h)
    good = [message(captured_body()) for _ in range(3)]
    await h.send(good[0])
    await h.send(message(captured_body(), message_id="refused"))
    await h.send(good[1])
    await h.send(good[2])
    await h.start()
    [dead] = await h.dead_letters(1)
    assert dead.message_id == "refused" and dead.headers["platen-error"] == "printer is on fire"
    assert await wait_for(lambda: _count_is(h, 3))
    assert await h.ids() == [m.message_id for m in good]


async def test_a_delivery_that_goes_alone_keeps_its_place_between_batches(
    harnesses, channel, pool, publisher
):
    h = BatchHarness(channel, pool, publisher, record)
    harnesses.append(h)
    good = [message(captured_body()) for _ in range(4)]
    await h.send(good[0])
    await h.send(good[1])
    await h.send(message(b"not json"))  # dead-lettered alone, with its reason
    await h.send(good[2])
    await h.send(good[3])
    await h.start()
    [dead] = await h.dead_letters(1)
    assert "body is not JSON" in dead.headers["platen-error"]
    assert await wait_for(lambda: _count_is(h, 4))
    applied = await h.applied()
    assert [m for m, _ in applied] == [m.message_id for m in good]
    # The two before it in one transaction, the two after in another.
    assert applied[0][1] == applied[1][1] != applied[2][1] == applied[3][1]


async def test_a_batch_committed_but_never_acked_is_a_no_op_when_redelivered(
    harnesses, amqp_url, channel, pool, publisher
):
    """The consumer dies between the commit and the acks (its connection closes in the
    first after-commit effect, so not one of the batch is acked): the broker delivers the
    whole batch again, to another consumer, and nothing is applied twice."""
    crashing = await aio_pika.connect(amqp_url)
    calls = []

    async def record_then_crash(ctx, event):
        calls.append(ctx.envelope.message_id)
        await record(ctx, event)

        async def crash():
            if not crashing.is_closed:
                await crashing.close()

        ctx.after_commit(crash)

    first = BatchHarness(await crashing.channel(), pool, publisher, record_then_crash)
    harnesses.append(first)
    sent = [message(captured_body()) for _ in range(4)]
    for msg in sent:
        await channel.default_exchange.publish(msg, routing_key=QUEUE)
    await first.start()
    assert await wait_for(lambda: _count_is(first, 4))

    async def crashed() -> bool:
        return crashing.is_closed

    # The rows are visible from the commit on; the effect that closes the connection runs
    # just after it, and before any ack: wait for it rather than race it.
    assert await wait_for(crashed)
    assert len({tx for _, tx in await first.applied()}) == 1
    assert len(calls) == 4

    async def counted(ctx, event):
        calls.append(ctx.envelope.message_id)
        await record(ctx, event)

    second = await started(harnesses, channel, pool, publisher, counted)
    assert await wait_for(second.queue_empty)  # the redeliveries, each acked
    await asyncio.sleep(0.3)
    assert await second.ids() == [m.message_id for m in sent]  # still once each
    assert len(calls) == 4  # the inbox stopped every redelivery before its handler


async def test_a_queue_without_batching_still_handles_one_delivery_per_transaction(
    channel, pool, publisher
):
    dispatcher = Dispatcher(
        queue=QUEUE,
        producer="pricing",
        pool=pool,
        publisher=publisher,
        relay=OutboxRelay(pool, publisher, "pricing"),
        handlers={JobCaptured: record},
    )
    sent = [message(captured_body()) for _ in range(4)]
    for msg in sent:
        await channel.default_exchange.publish(msg, routing_key=QUEUE)
    q = await channel.get_queue(QUEUE)
    await channel.set_qos(prefetch_count=10)
    await q.consume(dispatcher)
    h = BatchHarness(channel, pool, publisher, record)
    assert await wait_for(lambda: _count_is(h, 4))
    assert len({tx for _, tx in await h.applied()}) == 4


class LaterStore:
    """A store that, in a batch (`defer_writes`), puts off its writes until the batch's
    `flush`, and then refuses the lot if one of them is `refused-at-flush` (as the
    database refuses a set-based write one of whose rows breaks a rule). Alone, it writes
    at once, and writes anything."""

    def __init__(self, conn):
        self.conn = conn
        self.later: list[str] = []
        self.deferring = False

    def defer_writes(self):
        self.deferring = True

    async def write(self, message_id):
        if self.deferring:
            self.later.append(message_id)
            return
        await self._insert([message_id])

    async def flush(self):
        if "refused-at-flush" in self.later:
            raise RuntimeError("a put-off write refused")
        await self._insert(self.later)
        self.later = []

    async def _insert(self, message_ids):
        await self.conn.executemany(
            "INSERT INTO svc.applied (message_id, note) VALUES ($1, txid_current()::text)",
            [(m,) for m in message_ids],
        )


async def write_later(ctx, event):
    await ctx.store.write(ctx.envelope.message_id)


async def test_writes_a_store_put_off_are_made_in_the_batch_and_a_refusal_rolls_it_back(
    harnesses, channel, pool, publisher
):
    """A batch lets its store put off writes (`defer_writes`) and has them written before
    it commits (`flush`), in its transaction. If they are refused then, nothing of the
    batch is kept, and each message is handled again alone: applied once each."""
    h = BatchHarness(channel, pool, publisher, write_later, store=LaterStore)
    harnesses.append(h)
    first = [message(captured_body()) for _ in range(3)]
    for msg in first:
        await h.send(msg)
    await h.start()
    assert await wait_for(lambda: _count_is(h, 3))
    applied = await h.applied()
    assert [m for m, _ in applied] == [m.message_id for m in first]
    assert len({tx for _, tx in applied}) == 1  # written in the batch's one transaction
    assert await wait_for(h.queue_empty)
    # Sent together, well within the worker's linger: one batch.
    second = [message(captured_body()) for _ in range(2)]
    refused = message(captured_body(), message_id="refused-at-flush")
    for msg in (second[0], refused, second[1]):
        await h.send(msg)
    assert await wait_for(lambda: _count_is(h, 6))
    applied = (await h.applied())[3:]
    expected = [second[0].message_id, "refused-at-flush", second[1].message_id]
    assert [m for m, _ in applied] == expected
    assert len({tx for _, tx in applied}) == 3  # rolled back, then one transaction each
    assert await wait_for(h.queue_empty)
    assert await h.dead_letters(0) == []


async def _count_is(h, n) -> bool:
    return len(await h.applied()) == n


def test_a_batch_holds_at_least_one_delivery():
    with pytest.raises(ValueError, match="at least one"):
        Batcher(None, size=0)  # type: ignore[arg-type]


async def count_applied_and_ask_latest(ctx, event):
    """Records the message, emits one event of its own, and asks for the latest count of
    messages applied, an event only whose latest matters."""
    await record(ctx, event)
    await ctx.emit(event, correlation_id="each")

    async def applied_so_far():
        n = await ctx.conn.fetchval("SELECT count(*) FROM svc.applied")
        return event.model_copy(update={"pages": n})

    await ctx.emit_latest("count", applied_so_far, correlation_id="count")


async def _outbox(pool) -> list[tuple[str, int]]:
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT correlation_id, body FROM svc.outbox ORDER BY id")
    return [(r["correlation_id"], decode("job.captured", 1, r["body"]).pages) for r in rows]


async def test_an_event_only_whose_latest_matters_is_emitted_once_per_batch_at_its_end(pool):
    """`emit_latest` in a batch: one event per key, made at the batch's end from what the
    batch leaves, after the batch's other events; alone, one per message, made at once."""
    events = [decode("job.captured", 1, captured_body()) for _ in range(4)]
    steps = [(count_applied_and_ask_latest, e) for e in events]
    await apply_batch_in_transaction(pool, "pricing", steps)
    assert await _outbox(pool) == [("each", 1)] * 4 + [("count", 4)]
    await apply_in_transaction(pool, "pricing", count_applied_and_ask_latest, events[0])
    await apply_in_transaction(pool, "pricing", count_applied_and_ask_latest, events[1])
    assert (await _outbox(pool))[5:] == [("each", 1), ("count", 5), ("each", 1), ("count", 6)]


async def test_a_batcher_emits_an_event_only_whose_latest_matters_once_per_batch(
    harnesses, channel, pool, publisher
):
    """The same through the Batcher, as a service runs it: sent before it starts, the four
    deliveries are one batch, which leaves one latest count (4) after their own events."""
    h = BatchHarness(channel, pool, publisher, count_applied_and_ask_latest)
    harnesses.append(h)
    for _ in range(4):
        await h.send(message(captured_body()))
    await h.start()
    assert await wait_for(lambda: _count_is(h, 4))
    assert len({tx for _, tx in await h.applied()}) == 1  # one batch
    assert await _outbox(pool) == [("each", 1)] * 4 + [("count", 4)]
