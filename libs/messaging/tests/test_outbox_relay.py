"""The outbox relay and the inbox, against a real RabbitMQ and PostgreSQL."""

import uuid

import aio_pika
import pytest

from platen.events.desktop import BalanceNotice
from platen.events.jobs import JobCancelled
from platen.events.registry import decode
from platen.events.routing import COMMANDS, DESKTOP, EVENTS, desktop_key, desktop_queue
from platen.messaging import inbox, outbox
from platen.messaging.codec import HEADER_VERSION, envelope_for
from platen.messaging.outbox import OutboxRelay, PublishFailed


def cancelled() -> JobCancelled:
    return JobCancelled(
        job_id=uuid.uuid4(), user="alice", printer="lab-1", document_name="a.pdf", reason="x"
    )


async def test_relay_publishes_persistent_messages_with_their_envelope(pool, channel, publisher):
    q = await channel.declare_queue(exclusive=True)
    await q.bind(EVENTS, "job.cancelled")
    event = cancelled()
    env = envelope_for(event, "test", str(event.job_id))
    async with pool.acquire() as conn:
        await outbox.add(conn, event, env, exchange=EVENTS, routing_key="job.cancelled")
    relay = OutboxRelay(pool, publisher, "test")
    assert await relay.flush_once() == 1

    raw = await q.get(timeout=5)
    assert raw.message_id == env.message_id
    assert raw.type == "job.cancelled"
    assert raw.correlation_id == str(event.job_id)
    assert raw.app_id == "test"
    assert raw.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert raw.headers[HEADER_VERSION] == 1
    assert decode(raw.type, raw.headers[HEADER_VERSION], raw.body) == event
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM svc.outbox") == 0


async def test_relay_keeps_rows_it_could_not_route_and_sends_the_rest(pool, channel, publisher):
    # Nothing is bound to this command key: mandatory publishing makes that an error,
    # and the row stays for the next attempt instead of being lost; the rows after it
    # are not held back.
    q = await channel.declare_queue(exclusive=True)
    await q.bind(EVENTS, "job.cancelled")
    stuck, fine = cancelled(), cancelled()
    async with pool.acquire() as conn:
        await outbox.add(
            conn, stuck, envelope_for(stuck, "test"), exchange=COMMANDS, routing_key="nobody.here"
        )
        await outbox.add(
            conn, fine, envelope_for(fine, "test"), exchange=EVENTS, routing_key="job.cancelled"
        )
    relay = OutboxRelay(pool, publisher, "test")
    assert await relay.flush_once() == 1
    raw = await q.get(timeout=5)
    assert decode(raw.type, 1, raw.body) == fine
    with pytest.raises(PublishFailed):
        await relay.flush_once()  # only the refused row is left
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT attempts, last_error FROM svc.outbox")
    assert row["attempts"] == 2 and "NO_ROUTE" in row["last_error"]


async def test_relay_makes_the_desktop_queue_a_desktop_message_goes_to(pool, channel, publisher):
    # The handler that recorded the message declared nothing on the broker: the queue is
    # declared here, after the commit, so that the mandatory publish is routed.
    login = f"u{uuid.uuid4().hex[:8]}"
    notice = BalanceNotice(balance="1.00", available="1.00")
    async with pool.acquire() as conn:
        await outbox.add(
            conn,
            notice,
            envelope_for(notice, "test"),
            exchange=DESKTOP,
            routing_key=desktop_key(login, "balance"),
        )
    assert await OutboxRelay(pool, publisher, "test").flush_once() == 1
    q = await channel.get_queue(desktop_queue(login))
    raw = await q.get(timeout=5)
    assert decode(raw.type, raw.headers[HEADER_VERSION], raw.body) == notice
    await q.delete()


async def test_relay_keeps_publication_order(pool, channel, publisher):
    q = await channel.declare_queue(exclusive=True)
    await q.bind(EVENTS, "job.cancelled")
    events = [cancelled() for _ in range(50)]
    async with pool.acquire() as conn:
        for e in events:
            await outbox.add(
                conn, e, envelope_for(e, "test"), exchange=EVENTS, routing_key="job.cancelled"
            )
    assert await OutboxRelay(pool, publisher, "test").flush_once() == 50
    received = [decode("job.cancelled", 1, (await q.get(timeout=5)).body) for _ in events]
    assert [e.job_id for e in received] == [e.job_id for e in events]


async def test_inbox_claims_a_message_id_once_per_consumer(pool):
    async with pool.acquire() as conn:
        assert await inbox.claim(conn, "q1", "m1") is True
        assert await inbox.claim(conn, "q1", "m1") is False
        assert await inbox.claim(conn, "q2", "m1") is True
