"""A service's dead letters can be listed, left where they are, and replayed once the cause
is fixed: against a real RabbitMQ and PostgreSQL, with the real Dispatcher."""

import asyncio

import pytest
import structlog

from platen.events.system import DeadLettersListed, ListDeadLetters, ReplayDeadLetters
from platen.messaging.handling import HandlerContext, Rejected
from platen.messaging.service import ServiceSpec, queue_handlers
from platen.messaging.subscriptions import Subscriptions

from .test_dispatcher import Harness, captured_body, message, record, wait_for

SPEC = ServiceSpec(
    name="pricing",
    schema="svc",
    migrations=None,  # type: ignore[arg-type]
    subscriptions=Subscriptions("pricing", command_prefix="pricing"),
)


async def builtin(publisher, model, msg):
    handler = queue_handlers(SPEC, "commands")[model]
    ctx = HandlerContext(None, None, "pricing", publisher, structlog.get_logger())  # type: ignore[arg-type]
    return await handler(ctx, msg)


@pytest.fixture
async def dead(channel, pool, publisher):
    """Two messages pricing refused (its handler said no), in pricing.events.dlq."""
    fixed = asyncio.Event()

    async def refuse_until_fixed(ctx, event):
        if not fixed.is_set():
            raise Rejected("printer lab-1 is not set up for charging")
        await record(ctx, event)

    h = Harness(channel, pool, publisher, refuse_until_fixed)
    await h.start()
    sent = [message(captured_body(), correlation_id=f"job-{i}") for i in range(2)]
    for m in sent:
        await h.send(m)

    async def both_dead():
        listed = await builtin(publisher, ListDeadLetters, ListDeadLetters())
        return len(listed.letters) == 2

    assert await wait_for(both_dead)
    return h, fixed, [m.message_id for m in sent]


async def test_dead_letters_are_listed_with_their_reason_and_stay(dead, publisher):
    _, _, ids = dead
    for _ in range(2):  # listing twice finds them twice: a look takes nothing away
        listed = await builtin(publisher, ListDeadLetters, ListDeadLetters())
        assert isinstance(listed, DeadLettersListed)
        assert sorted(letter.message_id for letter in listed.letters) == sorted(ids)
        letter = listed.letters[0]
        assert letter.queue == "pricing.events"
        assert letter.message_type == "job.captured"
        assert letter.reason == "printer lab-1 is not set up for charging"
        assert letter.size > 0
        assert listed.more is False
    limited = await builtin(publisher, ListDeadLetters, ListDeadLetters(limit=1))
    assert len(limited.letters) == 1 and limited.more is True


async def test_a_replayed_dead_letter_is_handled_once_the_cause_is_fixed(dead, publisher):
    h, fixed, ids = dead
    fixed.set()
    first, second = ids
    replayed = await builtin(publisher, ReplayDeadLetters, ReplayDeadLetters(message_ids=[first]))
    assert replayed.replayed == [first]
    assert await wait_for(lambda: _applied(h, [first]))
    left = await builtin(publisher, ListDeadLetters, ListDeadLetters())
    assert [letter.message_id for letter in left.letters] == [second]

    everything = await builtin(publisher, ReplayDeadLetters, ReplayDeadLetters())
    assert everything.replayed == [second]
    assert await wait_for(lambda: _applied(h, [first, second]))
    assert (await builtin(publisher, ListDeadLetters, ListDeadLetters())).letters == []


async def _applied(h, ids):
    return sorted(await h.applied()) == sorted(ids)
