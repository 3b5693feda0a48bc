"""A delivery whose transaction PostgreSQL rolled back at its COMMIT is not acknowledged
as handled. Against a real RabbitMQ and PostgreSQL, with the real Dispatcher on
`pricing.events`."""

import contextlib

from platen.messaging.codec import HEADER_ERROR

from .test_dispatcher import Harness, captured_body, message, record


async def test_a_transaction_rolled_back_at_its_commit_is_not_acknowledged(
    channel, pool, publisher
):
    # A handler that swallows a statement's error leaves a failed transaction, which
    # PostgreSQL answers at COMMIT with a ROLLBACK and no error: nothing was applied, so
    # the delivery goes back to its queue (here, again and again, to its delivery limit).
    async def swallows(ctx, event):
        await record(ctx, event)
        with contextlib.suppress(Exception):
            await ctx.conn.execute("SELECT 1/0")

    h = Harness(channel, pool, publisher, swallows)
    h.dispatcher.back_off = 0.05
    await h.start()
    await h.send(message(captured_body(), message_id="swallowed"))
    [dead] = await h.dead_letters(1, timeout=60)
    error = dead.headers[HEADER_ERROR]
    error = error.decode() if isinstance(error, bytes) else error
    assert "RolledBack" in error and "ROLLBACK" in error
    assert await h.applied() == []
