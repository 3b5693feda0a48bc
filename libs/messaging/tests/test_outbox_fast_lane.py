"""The outbox relay's fast lane: a delivery's committed rows go out from memory and are
deleted in one statement, without the table being read; the table stays the safety net
(a row the fast lane could not send, a row nobody handed over). Against a real RabbitMQ
and PostgreSQL."""

import asyncio
import contextlib
import dataclasses
from datetime import UTC, datetime, timedelta

from platen.db import create_pool
from platen.events.registry import decode
from platen.events.routing import COMMANDS, EVENTS
from platen.messaging import outbox
from platen.messaging.codec import envelope_for
from platen.messaging.outbox import OutboxRelay

from .test_dispatcher import first_message, wait_for
from .test_outbox_relay import add_cancelled, cancelled


async def _commit(
    pool, events, where, *, occurred_at=None, waited: float = 0
) -> list[tuple[int, tuple]]:
    """`events` written in one transaction, as a delivery's are, each to its (exchange,
    routing key); their (id, row)s. `occurred_at`: the time the emitting service's clock
    gave them; `waited`: seconds the transaction spent before writing them."""
    envelopes = [envelope_for(e, "test") for e in events]
    if occurred_at is not None:
        envelopes = [dataclasses.replace(env, occurred_at=occurred_at) for env in envelopes]
    rows = [
        outbox.row(e, env, exchange=exchange, routing_key=key)
        for e, env, (exchange, key) in zip(events, envelopes, where, strict=True)
    ]
    async with pool.acquire() as conn, conn.transaction():
        if waited:
            await conn.execute("SELECT pg_sleep($1)", waited)
        return await outbox.add_rows(conn, rows)


CANCELLED = (EVENTS, "job.cancelled")


@contextlib.asynccontextmanager
async def running(relay: OutboxRelay):
    task = asyncio.create_task(relay.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_rows_handed_over_are_published_from_memory_and_deleted_in_one_statement(
    pool, database_url, channel, publisher
):
    q = await channel.declare_queue(exclusive=True)
    await q.bind(EVENTS, "job.cancelled")
    one = await create_pool(database_url, "svc", min_size=1, max_size=1)  # the relay's
    sent: list[str] = []
    async with one.acquire() as conn:
        conn.add_query_logger(lambda record: sent.append(record.query))
    relay = OutboxRelay(one, publisher, "test", poll_interval=3600)
    try:
        async with running(relay):
            # Its first turn reads the table (rows a stopped process left): wait it out.
            async def swept():
                return "COMMIT" in sent

            assert await wait_for(swept)
            before = len(sent)
            events = [cancelled() for _ in range(3)]
            committed = await _commit(pool, events, [(EVENTS, "job.cancelled")] * 3)
            await relay.hand_over(committed)
            got = [await first_message(q) for _ in events]
            assert [decode("job.cancelled", 1, raw.body) for raw in got] == events  # in order

            async def table_empty():
                async with pool.acquire() as conn:
                    return await conn.fetchval("SELECT count(*) FROM svc.outbox") == 0

            assert await wait_for(table_empty)
            # The commit that did not wait for the disk changed nothing for the connection's
            # next user.
            async with one.acquire() as conn:
                assert await conn.fetchval("SHOW synchronous_commit") == "on"
    finally:
        await one.close()
    statements = [s for s in sent[before:] if "pg_catalog" not in s and "pg_type" not in s]
    ids = ", ".join(str(i) for i, _ in committed)
    assert statements[0] == (
        "BEGIN; SET LOCAL synchronous_commit TO off; "
        f"DELETE FROM outbox WHERE id IN ({ids}); COMMIT"
    )
    assert statements[1:] == ["SHOW synchronous_commit"]


async def test_a_row_the_fast_lane_could_not_send_is_left_to_the_sweep(pool, channel, publisher):
    q = await channel.declare_queue(exclusive=True)
    await q.bind(EVENTS, "job.cancelled")
    good, lost = cancelled(), cancelled()
    # Nothing is bound under the second's key: the broker returns it (`mandatory`).
    committed = await _commit(
        pool, [good, lost], [(EVENTS, "job.cancelled"), (COMMANDS, "nobody.here")]
    )
    relay = OutboxRelay(pool, publisher, "test", poll_interval=3600)
    async with running(relay):
        await relay.hand_over(committed)
        raw = await first_message(q)
        assert raw is not None and decode("job.cancelled", 1, raw.body) == good

        async def counted():
            # The sweep, asked for by the failure, tried it again and counted the refusal.
            async with pool.acquire() as conn:
                rows = await conn.fetch("SELECT id, attempts FROM svc.outbox")
            return [(r["id"], r["attempts"] > 0) for r in rows] == [(committed[1][0], True)]

        assert await wait_for(counted)


async def test_the_timed_sweep_leaves_rows_younger_than_a_fast_lane_needs(pool, channel, publisher):
    q = await channel.declare_queue(exclusive=True)
    await q.bind(EVENTS, "job.cancelled")
    [event] = await add_cancelled(pool, 1)  # committed, never handed over
    relay = OutboxRelay(pool, publisher, "test")
    assert await relay.flush_once(older_than=60) == 0  # another replica may be sending it
    assert await relay.flush_once(older_than=0) == 1
    assert decode("job.cancelled", 1, (await q.get(timeout=5)).body) == event


async def test_a_row_nobody_handed_over_goes_out_with_the_timed_sweep(pool, channel, publisher):
    # Committed by a process that stopped before handing it over: the next timed sweep of
    # any relay sends it, once it has settled.
    q = await channel.declare_queue(exclusive=True)
    await q.bind(EVENTS, "job.cancelled")
    relay = OutboxRelay(pool, publisher, "test", poll_interval=0.2)
    async with running(relay):
        await asyncio.sleep(0.5)  # its first turn, which reads every row, is over
        [event] = await add_cancelled(pool, 1)
        raw = await first_message(q, timeout=outbox.SETTLED + 10)
        assert raw is not None and decode("job.cancelled", 1, raw.body) == event


async def test_a_backlog_larger_than_a_batch_is_drained_without_waiting_for_the_timer(
    pool, channel, publisher
):
    # An outage leaves many rows: each full batch the sweep sends asks for the next at once.
    q = await channel.declare_queue(exclusive=True)
    await q.bind(EVENTS, "job.cancelled")
    events = await add_cancelled(pool, 35)
    relay = OutboxRelay(pool, publisher, "test", batch_size=10, poll_interval=3600)
    async with running(relay):
        got = [await first_message(q) for _ in events]
    assert [decode("job.cancelled", 1, raw.body) for raw in got if raw] == events


async def test_the_sweep_leaves_the_rows_handed_over_to_the_fast_lane(pool, channel, publisher):
    q = await channel.declare_queue(exclusive=True)
    await q.bind(EVENTS, "job.cancelled")
    left_behind = (await add_cancelled(pool, 1))[0]  # nobody handed this one over
    handed = await _commit(pool, [cancelled()], [(EVENTS, "job.cancelled")])
    relay = OutboxRelay(pool, publisher, "test")
    await relay.hand_over(handed)  # the relay has not had its turn yet
    assert await relay.flush_once() == 1  # only the row left behind
    raw = await first_message(q)
    assert raw is not None and decode("job.cancelled", 1, raw.body) == left_behind
    assert await first_message(q, timeout=0.5) is None


async def test_a_rows_age_is_the_databases_not_the_emitting_services_clock(
    pool, channel, publisher
):
    """A replica whose clock is an hour behind writes rows that look an hour old by its
    clock: still young, they are left to its fast lane. One whose clock is an hour ahead
    has its orphaned rows swept once they have settled, not an hour later. The message
    keeps the time its service gave it."""
    q = await channel.declare_queue(exclusive=True)
    await q.bind(EVENTS, "job.cancelled")
    relay = OutboxRelay(pool, publisher, "test")
    now = datetime.now(UTC)
    behind = cancelled()
    await _commit(pool, [behind], [CANCELLED], occurred_at=now - timedelta(hours=1))
    assert await relay.flush_once(older_than=60) == 0
    async with pool.acquire() as conn:
        waiting, oldest, _ = await outbox.backlog(conn)
    assert waiting == 1 and oldest < 60

    ahead = cancelled()
    await _commit(pool, [ahead], [CANCELLED], occurred_at=now + timedelta(hours=1))
    await asyncio.sleep(1.2)
    assert await relay.flush_once(older_than=1) == 2
    got = [await q.get(timeout=5) for _ in range(2)]
    assert [decode("job.cancelled", 1, m.body) for m in got] == [behind, ahead]
    assert abs(got[1].timestamp - (now + timedelta(hours=1))) < timedelta(seconds=1)


async def test_a_row_is_as_old_as_its_insert_not_its_transaction(pool, channel, publisher):
    """A delivery that waited (on a lock, say) longer than a row takes to settle before it
    emitted: its row is young when it commits, so no other replica's timed sweep takes it
    while the delivery's own fast lane sends it."""
    relay = OutboxRelay(pool, publisher, "test")
    await _commit(pool, [cancelled()], [CANCELLED], waited=1.5)
    assert await relay.flush_once(older_than=1) == 0
