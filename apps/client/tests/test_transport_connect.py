"""A desktop's attempts to connect leave no connection open behind them: refused by the
broker (a revoked credential) or by a node that is not there, each connection object the
attempt made is closed before the client waits and tries again."""

from __future__ import annotations

import asyncio
import gc
from urllib.parse import urlsplit

import aio_pika
import pytest

from platen.client.transport import SIGNED_OUT, Transport
from platen.events.discovery import with_nodes
from platen.localstack.servers import free_port

pytestmark = pytest.mark.integration


def _left(password: str) -> list[aio_pika.Connection]:
    return [
        o
        for o in gc.get_objects()
        if isinstance(o, aio_pika.Connection) and o.url.password == password
    ]


async def _nothing(*_: object) -> None:
    return None


async def test_a_refused_credential_leaves_no_connection_open_and_signs_the_desktop_out(
    amqp_url,
):
    password = urlsplit(amqp_url).password
    refused = amqp_url.replace(f":{password}@", ":revoked-password@")
    statuses: list[str] = []
    transport = Transport(refused, "alice", _nothing, lambda state, _: statuses.append(state))
    gc.disable()  # the connection object stays to be looked at (it is in a reference cycle)
    try:
        await asyncio.wait_for(transport.run(), 30)
        left = _left("revoked-password")
        assert len(left) == 1 and left[0].is_closed
    finally:
        gc.enable()
    assert transport.signed_out and statuses == [SIGNED_OUT]


async def test_attempts_on_a_node_that_is_not_there_leave_no_connection_open(amqp_url):
    password = urlsplit(amqp_url).password
    dead = with_nodes(
        amqp_url.replace(f":{password}@", ":dead-node-password@"),
        [f"127.0.0.1:{free_port()}"],
    )
    statuses: list[str] = []
    twice = asyncio.Event()

    def status(state: str, _: str) -> None:
        statuses.append(state)
        if statuses.count("disconnected") == 2:
            twice.set()

    transport = Transport(dead, "alice", _nothing, status)
    gc.disable()
    try:
        attempts = asyncio.create_task(transport.run())
        # The first attempt at once, the second after a second's back-off.
        await asyncio.wait_for(twice.wait(), 30)
        attempts.cancel()
        with pytest.raises(asyncio.CancelledError):
            await attempts
        left = _left("dead-node-password")
        assert len(left) >= 2 and all(o.is_closed for o in left)
    finally:
        gc.enable()
    assert not transport.signed_out
