"""Taking messages off a real queue in a test, as a consumer would, with a deadline.

`basic.get` rather than a consumer: a test takes exactly what it asks for, and what it
does not take stays queued for the next assertion."""

from __future__ import annotations

import asyncio

from aio_pika.abc import AbstractIncomingMessage, AbstractQueue


async def take(
    queue: AbstractQueue, count: int, timeout: float = 15.0
) -> list[AbstractIncomingMessage]:
    """Up to `count` messages from `queue`, each acknowledged, waiting at most `timeout`
    seconds in all (fewer if fewer came: the caller asserts how many it expected)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    got: list[AbstractIncomingMessage] = []
    while len(got) < count and (left := deadline - loop.time()) > 0:
        # The whole wait may go to one answer: a loaded machine can take longer than
        # aio-pika's 5 s default to answer a basic.get.
        raw = await queue.get(fail=False, timeout=max(left, 1.0))
        if raw is None:
            await asyncio.sleep(0.05)
            continue
        await raw.ack()
        got.append(raw)
    return got
