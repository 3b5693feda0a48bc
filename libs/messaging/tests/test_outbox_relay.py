"""The outbox relay and the inbox, against a real RabbitMQ and PostgreSQL."""

import asyncio
import contextlib
import uuid
from urllib.parse import urlsplit, urlunsplit

import aio_pika
import pytest

from platen.db import create_pool
from platen.events.desktop import BalanceNotice
from platen.events.jobs import JobCancelled
from platen.events.registry import decode
from platen.events.routing import COMMANDS, DESKTOP, EVENTS, desktop_key, desktop_queue
from platen.messaging import inbox, outbox
from platen.messaging.codec import HEADER_VERSION, envelope_for
from platen.messaging.outbox import MAX_ATTEMPTS, OutboxRelay, PublishFailed, backlog
from platen.messaging.publisher import Publisher


def cancelled() -> JobCancelled:
    return JobCancelled(
        job_id=uuid.uuid4(), user="alice", printer="lab-1", document_name="a.pdf", reason="x"
    )


async def add_cancelled(pool, count: int) -> list[JobCancelled]:
    """`count` new `job.cancelled` events in the outbox, a row each, in their order."""
    events = [cancelled() for _ in range(count)]
    async with pool.acquire() as conn:
        for e in events:
            await outbox.add(
                conn, e, envelope_for(e, "test"), exchange=EVENTS, routing_key="job.cancelled"
            )
    return events


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
    events = await add_cancelled(pool, 50)
    assert await OutboxRelay(pool, publisher, "test").flush_once() == 50
    received = [decode("job.cancelled", 1, (await q.get(timeout=5)).body) for _ in events]
    assert [e.job_id for e in received] == [e.job_id for e in events]


async def test_rows_added_together_are_one_statement_kept_whole_and_published_in_order(
    pool, channel, publisher
):
    """A batch's rows (`add_rows`) go in one statement: each row as `add` would write it,
    every column (the empty ones too), and their ids, which the relay publishes by, in
    the order given."""
    q = await channel.declare_queue(exclusive=True)
    await q.bind(EVENTS, "job.cancelled")
    events = [cancelled() for _ in range(40)]
    rows = [
        outbox.row(
            e,
            envelope_for(e, "test", str(e.job_id) if i % 2 else None),
            exchange=EVENTS,
            routing_key="job.cancelled",
            expiration_ms=60_000 if i % 3 == 0 else None,
            reply_to="billing.replies" if i % 5 == 0 else None,
            marks='{"job_id": "x"}' if i % 7 == 0 else None,
        )
        for i, e in enumerate(events)
    ]
    sent: list = []
    async with pool.acquire() as conn, conn.transaction():
        conn.add_query_logger(sent.append)
        await outbox.add_rows(conn, rows)
        conn.remove_query_logger(sent.append)
    # (asyncpg's own first questions about the statement's types aside)
    [insert] = [q.query for q in sent if "outbox" in q.query]
    assert "unnest" in insert
    async with pool.acquire() as conn:
        stored = await conn.fetch(
            "SELECT message_id, exchange, routing_key, message_type, schema_version, "
            "correlation_id, body, expiration_ms, created_at, reply_to, marks "
            "FROM svc.outbox ORDER BY id"
        )
    assert [tuple(r) for r in stored] == rows
    assert await OutboxRelay(pool, publisher, "test").flush_once() == 40
    received = [await q.get(timeout=5) for _ in events]
    assert [r.message_id for r in received] == [row[0] for row in rows]


async def test_a_flush_that_publishes_every_row_is_three_round_trips(
    pool, database_url, channel, publisher
):
    """BEGIN, the SELECT that locks the rows, then their DELETE and the COMMIT together:
    the batch's end costs one round trip, and the rows are gone once it commits."""
    q = await channel.declare_queue(exclusive=True)
    await q.bind(EVENTS, "job.cancelled")
    events = await add_cancelled(pool, 3)
    one = await create_pool(database_url, "svc", min_size=1, max_size=1)  # the relay's
    sent: list[str] = []

    def logged(record) -> None:
        sent.append(record.query)

    try:
        async with one.acquire() as conn:
            conn.add_query_logger(logged)
        assert await OutboxRelay(one, publisher, "test").flush_once() == 3
        async with one.acquire() as conn:
            conn.remove_query_logger(logged)
            assert not conn.is_in_transaction()
    finally:
        await one.close()
    # (asyncpg's own first questions about the statements' types aside)
    statements = [s for s in sent if "pg_catalog" not in s and "pg_type" not in s]
    assert len(statements) == 3, statements
    assert statements[0] == "BEGIN"
    assert "FOR UPDATE" in statements[1]
    assert statements[2].startswith("DELETE") and statements[2].endswith("; COMMIT")
    received = {decode("job.cancelled", 1, (await q.get(timeout=5)).body) for _ in events}
    assert received == set(events)
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM svc.outbox") == 0


async def test_inbox_claims_a_message_id_once_per_consumer(pool):
    async with pool.acquire() as conn:
        assert await inbox.claim(conn, "q1", "m1") is True
        assert await inbox.claim(conn, "q1", "m1") is False
        assert await inbox.claim(conn, "q2", "m1") is True


class Cuttable:
    """A TCP relay to the broker that a test can cut and restore on the same port: to the
    publisher behind it, the broker goes away and comes back."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        await self._server.wait_closed()

    async def _serve(self, reader, writer) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))

        async def pipe(src, dst):
            with contextlib.suppress(ConnectionError, OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


async def test_a_broker_outage_costs_no_attempts_however_long(pool, channel, amqp_url):
    q = await channel.declare_queue(exclusive=True)
    await q.bind(EVENTS, "job.cancelled")
    parts = urlsplit(amqp_url)
    relay_to_broker = Cuttable(parts.hostname, parts.port)
    await relay_to_broker.start()
    url = urlunsplit(
        parts._replace(netloc=f"{parts.netloc.rsplit(':', 1)[0]}:{relay_to_broker.port}")
    )
    publisher = Publisher(url, "test")
    await publisher.connect()
    events = await add_cancelled(pool, 3)
    relay = OutboxRelay(pool, publisher, "test")
    try:
        await relay_to_broker.cut()
        # More failed rounds than the old limit of attempts, which abandoned the rows.
        for _ in range(MAX_ATTEMPTS + 5):
            with pytest.raises(PublishFailed):
                await relay.flush_once()
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT max(attempts) FROM svc.outbox") == 0
            waiting, oldest, refused = await backlog(conn)
        assert (waiting, refused) == (3, 0) and oldest is not None and oldest >= 0

        await relay_to_broker.start()  # the broker is back, on the same address
        sent = 0
        deadline = asyncio.get_running_loop().time() + 30
        while sent < 3 and asyncio.get_running_loop().time() < deadline:
            with contextlib.suppress(PublishFailed):
                sent += await relay.flush_once()
            await asyncio.sleep(0.2)
        assert sent == 3
        received = [decode("job.cancelled", 1, (await q.get(timeout=5)).body) for _ in events]
        assert [e.job_id for e in received] == [e.job_id for e in events]
        async with pool.acquire() as conn:
            assert await backlog(conn) == (0, None, 0)
    finally:
        await publisher.close()
        with contextlib.suppress(Exception):
            await relay_to_broker.cut()


class _CancelledOnce:
    """A publisher whose first publish is cancelled by its client library, as aiormq does
    to a publish whose connection closes while its confirm is awaited (a frozen broker)."""

    def __init__(self, real: Publisher) -> None:
        self.real = real
        self.cancelled = 0

    async def ensure_desktop_queue(self, login: str) -> None:
        await self.real.ensure_desktop_queue(login)

    async def publish(self, exchange, routing_key, message, *, mandatory=True) -> None:
        if not self.cancelled:
            self.cancelled += 1
            raise asyncio.CancelledError
        await self.real.publish(exchange, routing_key, message, mandatory=mandatory)


async def test_a_publish_cancelled_under_the_relay_neither_ends_it_nor_loses_the_row(
    pool, channel, publisher
):
    q = await channel.declare_queue(exclusive=True)
    await q.bind(EVENTS, "job.cancelled")
    event = cancelled()
    async with pool.acquire() as conn:
        await outbox.add(
            conn, event, envelope_for(event, "test"), exchange=EVENTS, routing_key="job.cancelled"
        )
    flaky = _CancelledOnce(publisher)
    relay = OutboxRelay(pool, flaky, "test", max_backoff=0.05)  # type: ignore[arg-type]
    task = asyncio.create_task(relay.run())
    try:
        raw = await q.get(timeout=10, fail=False)
        while raw is None and not task.done():
            await asyncio.sleep(0.1)
            raw = await q.get(fail=False)
        assert flaky.cancelled == 1
        assert not task.done()  # the relay is still running
        assert raw is not None and decode(raw.type, 1, raw.body) == event
        # The relay deletes the row once the broker has confirmed it, in a transaction that
        # commits after the message can already be read here: waited for.
        deadline = asyncio.get_running_loop().time() + 30
        while True:
            async with pool.acquire() as conn:
                left = await backlog(conn)
            if left == (0, None, 0) or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.05)
        assert left == (0, None, 0)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_the_publisher_keeps_no_desktop_queue_in_memory(channel, amqp_url):
    # A site has thousands of desktop queues: a robust channel that kept each (to declare
    # it again on reconnecting) grew notification by about 3 KiB a user (held_jobs.py).
    logins = [f"u{uuid.uuid4().hex[:8]}" for _ in range(3)]
    publisher = Publisher(amqp_url, "test")
    await publisher.connect()
    try:
        for login in logins:
            await publisher.ensure_desktop_queue(login)
        assert not publisher.channel._queues  # type: ignore[attr-defined]
        # Declared and bound all the same.
        for login in logins:
            await publisher.publish(
                DESKTOP,
                desktop_key(login, "balance"),
                aio_pika.Message(b"{}", message_id=str(uuid.uuid4())),
            )
            q = await channel.get_queue(desktop_queue(login))
            assert (await q.get(timeout=5)).body == b"{}"
    finally:
        await publisher.close()


async def test_a_signed_in_desktops_queue_deleted_by_another_replica_is_declared_again(
    channel, amqp_url
):
    """Replica B declared ann's desktop pc-1's queue at sign-in; replica A deleted it when
    the administrator revoked pc-1; ann signs pc-1 in again through B. B must declare the
    queue again, not trust that it declared it once (the desktop would read nothing)."""
    login = f"u{uuid.uuid4().hex[:8]}"
    identity = f"{login}~pc-1"
    a, b = Publisher(amqp_url, "replica-a"), Publisher(amqp_url, "replica-b")
    await a.connect()
    await b.connect()
    try:
        await b.ensure_desktop_queue(identity)
        await a.delete_desktop_queue(identity)
        await b.ensure_desktop_queue(identity)
        q = await channel.declare_queue(desktop_queue(identity), passive=True)
        assert q.declaration_result.message_count == 0
        await b.publish(
            DESKTOP,
            desktop_key(login, "balance"),
            aio_pika.Message(b"{}", message_id=str(uuid.uuid4())),
        )
        assert (await q.get(timeout=5)).body == b"{}"
    finally:
        await a.close()
        await b.close()
