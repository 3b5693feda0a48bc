"""The desktop client's connection to a real broker: one the broker refuses is closed at
once, not left for the garbage collector (a desktop offline for a day tries hundreds of
times)."""

from __future__ import annotations

import gc
from urllib.parse import urlsplit

import aio_pika
import pytest

from platen.client.transport import SIGNED_OUT, Transport

pytestmark = pytest.mark.integration


async def test_a_refused_sign_in_signs_out_and_leaves_no_connection_open(amqp_url):
    password = urlsplit(amqp_url).password
    refused = amqp_url.replace(f":{password}@", ":not-the-password@")
    said: list[tuple[str, str]] = []

    async def nothing(delivery) -> None:
        raise AssertionError("no message can arrive")

    transport = Transport(
        refused, "ann", nothing, lambda state, detail: said.append((state, detail))
    )
    gc.disable()  # the connection object stays to be looked at (it is in a reference cycle)
    try:
        await transport.run()  # returns only when the broker refuses the credential
        left = [
            o
            for o in gc.get_objects()
            if isinstance(o, aio_pika.Connection) and o.url.password == "not-the-password"
        ]
        assert len(left) == 1 and left[0].is_closed
    finally:
        gc.enable()
    assert transport.signed_out and said[-1][0] == SIGNED_OUT
