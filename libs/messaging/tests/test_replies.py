"""A request's reply is not lost with the connection it goes out on.

The request's effect is committed before its reply is sent, and a requester such as the
notification service (waiting for the ledger's answer to a user's "print") does not ask
again: only this delivery can answer it. So the reply is sent before the delivery is
acknowledged, and sent again until the broker confirms it; if the delivery's own channel
goes meanwhile, the broker delivers the request again and its stored reply answers it.
Against a real RabbitMQ and PostgreSQL, with the real Dispatcher; the broker closes the
publisher's connection, as a broker restart or a cut network does.
"""

import asyncio
import uuid

from platen.events.printers import AddPrinter
from platen.events.registry import encode
from platen.events.system import ErrorReply

from .test_dispatcher import first_message, message, reply_queue
from .test_queries import _serve


async def _close_publisher(vhosts, vhost: str, publisher) -> None:
    """Have the broker close the publisher's connection, and wait until it knows."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    # The management API lists a new connection a few seconds late.
    while not await asyncio.to_thread(vhosts.close_connections, vhost, "test/publisher"):
        assert loop.time() < deadline, "the publisher's connection was never listed"
        await asyncio.sleep(0.2)
    while publisher.connected:
        assert loop.time() < deadline, "the publisher never saw its connection close"
        await asyncio.sleep(0.02)


async def test_a_reply_that_fails_with_the_publishers_connection_is_sent_once_it_is_back(
    channel, pool, publisher, me, vhosts, vhost
):
    async def add(ctx, cmd: AddPrinter):
        await ctx.conn.execute(
            "INSERT INTO svc.applied (message_id) VALUES ($1)", ctx.envelope.message_id
        )
        # Committed, and then the reply goes out while the publisher reconnects.
        await _close_publisher(vhosts, vhost[0], publisher)
        return ErrorReply(error=f"added {cmd.name}")

    commands = await _serve(channel, pool, publisher, {AddPrinter: add})
    asker, reply_to = await reply_queue(channel, me)
    message_id = str(uuid.uuid4())
    await commands.publish(
        message(
            encode(AddPrinter(name="lab-1", price_per_page="0.10")),
            type_=AddPrinter.message_type,
            message_id=message_id,
            reply_to=reply_to,
            user_id=me,
        ),
        routing_key=AddPrinter.message_type,
    )
    raw = await first_message(asker, timeout=60)
    assert raw is not None, "the reply was lost with the publisher's connection"
    assert raw.correlation_id == message_id and b"added lab-1" in raw.body
    # Applied once, and answered once: the request was acknowledged after its reply.
    assert await first_message(asker, timeout=2) is None
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM svc.applied") == 1
