"""A request client's connection to a real broker: one the broker refuses leaves nothing
open behind it."""

from __future__ import annotations

import gc
from urllib.parse import urlsplit

import aio_pika
import pytest

from platen import rpc
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
