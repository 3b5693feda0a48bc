"""One AMQP connection opened, or nothing left behind.

aio-pika's `connect` drops the connection object it made, unclosed, when the broker
refuses the sign-in or does not answer; its `__del__` needs a running event loop to close
it, so one collected where there is none (a thread of `asyncio.to_thread`, an interpreter
ending) makes Python warn of a `Connection.close` never awaited. `open_connection` closes
it before the error goes on (`platen.rpc`'s requests, `platen.messaging.failover`'s plain
connections)."""

from __future__ import annotations

import aio_pika
from aio_pika.abc import AbstractConnection


async def open_connection(node: str, *, timeout: float | None = None) -> AbstractConnection:
    """`aio_pika.connect(node, timeout=timeout)`, closed again when it cannot be opened."""
    connection = aio_pika.Connection(aio_pika.connection.make_url(node))
    try:
        await connection.connect(timeout=timeout)
    except BaseException:
        await connection.close()
        raise
    return connection
