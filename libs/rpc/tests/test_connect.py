"""A request client's connection to a real broker: one the broker refuses leaves nothing
open behind it; one lost while a request waits ends the request at once."""

from __future__ import annotations

import asyncio
import gc
import uuid
from urllib.parse import urlsplit

import aio_pika
import pytest

from platen import rpc
from platen.events.jobs import GetJobStatus
from platen.events.routing import COMMANDS
from platen.rpc import RequestFailed


async def test_a_connection_the_broker_refuses_is_closed_not_left_to_the_garbage_collector(
    amqp_url,
):
    """aio-pika's `connect` drops the connection object it made unclosed when the broker
    refuses; collected later in another thread, its clean-up has no event loop and Python
    warns (it did in the CUPS tests, after `rpc.connect` with a revoked password)."""
    password = urlsplit(amqp_url).password
    refused = amqp_url.replace(f":{password}@", ":not-the-password@")
    with pytest.raises(RequestFailed, match="cannot reach"):
        async with rpc.connect(refused):
            pass
    left = [
        o
        for o in gc.get_objects()
        if isinstance(o, aio_pika.Connection) and o.url.password == "not-the-password"
    ]
    assert all(o.is_closed for o in left)


async def test_a_request_whose_connection_is_lost_while_it_waits_fails_at_once(
    channel, vhost, vhosts
):
    """Its publication confirmed (a queue holds it, nobody answers), then the broker closes
    the connection, whose reply queue goes with it: the request ends then, as an outage,
    instead of waiting out its minute for an answer that cannot come."""
    queue = await channel.declare_queue(exclusive=True)
    await queue.bind(COMMANDS, routing_key="test.unanswered")
    arrived = asyncio.Event()

    async def take_and_say_nothing(message) -> None:
        arrived.set()

    await queue.consume(take_and_say_nothing)
    async with rpc.connect(vhost[1]) as client:
        request = asyncio.create_task(
            client.request("test.unanswered", GetJobStatus(job_id=uuid.uuid4()), timeout=60)
        )
        await asyncio.wait_for(arrived.wait(), 30)
        # The management API lists a new connection with a delay: cut until it has.
        for _ in range(60):
            if vhosts.close_connections(vhost[0]) and client.connection.is_closed:
                break
            await asyncio.sleep(0.5)
        with pytest.raises(RequestFailed, match="the connection to the broker was lost"):
            await asyncio.wait_for(request, 30)
