"""A query changes nothing: it is answered in a read-only transaction, claims no inbox row
(asked again, it is answered again), and a handler that only speaks to the broker holds no
database connection. Against a real RabbitMQ and PostgreSQL, with the real Dispatcher."""

import json
import uuid

from platen.events.printers import ShowPrinter
from platen.events.registry import encode
from platen.events.routing import COMMANDS
from platen.events.system import ErrorReply, ListDeadLetters
from platen.messaging.codec import HEADER_ERROR
from platen.messaging.handling import Dispatcher
from platen.messaging.outbox import OutboxRelay

from .test_dispatcher import first_message, message, reply_queue

QUEUE = "pricing.commands"


async def _serve(channel, pool, publisher, handlers, **kinds):
    dispatcher = Dispatcher(
        queue=QUEUE,
        producer="pricing",
        pool=pool,
        publisher=publisher,
        relay=OutboxRelay(pool, publisher, "pricing"),
        handlers=handlers,
        **kinds,
    )
    await (await channel.get_queue(QUEUE)).consume(dispatcher)
    return await channel.get_exchange(COMMANDS)


async def test_a_query_is_answered_each_time_it_is_asked_and_claims_no_inbox_row(
    channel, pool, publisher, me
):
    asked = []

    async def show(ctx, query):
        asked.append(await ctx.conn.fetchval("SELECT count(*) FROM svc.applied"))
        return ErrorReply(error=f"answer {len(asked)}")

    commands = await _serve(channel, pool, publisher, {ShowPrinter: show}, queries=[ShowPrinter])
    asker, reply_to = await reply_queue(channel, me)
    body, message_id = encode(ShowPrinter(name="lab-1")), str(uuid.uuid4())
    for _ in range(2):  # the same message twice, as a redelivery would be
        await commands.publish(
            message(
                body,
                type_=ShowPrinter.message_type,
                message_id=message_id,
                reply_to=reply_to,
                user_id=me,
            ),
            routing_key=ShowPrinter.message_type,
        )
        raw = await first_message(asker)
        assert raw is not None and raw.correlation_id == message_id
    assert asked == [0, 0]
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM svc.inbox") == 0


async def test_a_query_that_writes_is_refused_and_dead_lettered_with_the_reason(
    channel, pool, publisher
):
    async def writes(ctx, query):
        await ctx.conn.execute("INSERT INTO svc.applied (message_id) VALUES ('x')")

    commands = await _serve(channel, pool, publisher, {ShowPrinter: writes}, queries=[ShowPrinter])
    await commands.publish(
        message(encode(ShowPrinter(name="lab-1")), type_=ShowPrinter.message_type),
        routing_key=ShowPrinter.message_type,
    )
    dead = await first_message(await channel.get_queue(f"{QUEUE}.dlq"), timeout=30)
    assert dead is not None and "read-only" in dead.headers[HEADER_ERROR]
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM svc.applied") == 0


async def test_a_handler_that_only_speaks_to_the_broker_gets_no_database(
    channel, pool, publisher, me
):
    seen = []

    async def letters(ctx, query):
        seen.append((ctx.conn, ctx.store))
        return ErrorReply(error="none")

    commands = await _serve(
        channel, pool, publisher, {ListDeadLetters: letters}, without_database=[ListDeadLetters]
    )
    asker, reply_to = await reply_queue(channel, me)
    await commands.publish(
        message(
            encode(ListDeadLetters()),
            type_=ListDeadLetters.message_type,
            reply_to=reply_to,
            user_id=me,
        ),
        routing_key="pricing.dead_letters.list",
    )
    raw = await first_message(asker)
    assert raw is not None and json.loads(raw.body) == {"error": "none"}
    assert seen == [(None, None)]
