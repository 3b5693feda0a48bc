"""The whole broker topology, declared in one place.

The installer declares all of it once (`declare_all`); each service declares the exchanges
and its own queues again at start-up (declarations are idempotent). Events nobody consumes
go to the alternate exchange `platen.unrouted` instead of being dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import aio_pika
from aio_pika.abc import AbstractChannel, ExchangeType

from platen.events.routing import (
    COMMANDS,
    DEAD_LETTER,
    DESKTOP,
    DESKTOP_REPLIES,
    EVENTS,
    UNROUTED,
    desktop_key,
    desktop_queue,
)

# After this many deliveries a message that keeps failing is dead-lettered by the broker.
DELIVERY_LIMIT = 5


@dataclass(frozen=True)
class ConsumerQueue:
    name: str
    exchange: str
    routing_keys: tuple[str, ...]

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.name}.dlq"


# service name -> the prefix of the commands it owns (routing key `<prefix>.<...>`)
COMMAND_PREFIX = {
    "job-capture": "capture",
    "pricing": "pricing",
    "account-ledger": "ledger",
    "notification": "notification",
}
SERVICES = tuple(COMMAND_PREFIX)

NOTIFICATION_ANSWERS = "notification.answers"


def _events(service: str, *keys: str) -> ConsumerQueue:
    return ConsumerQueue(f"{service}.events", EVENTS, keys)


def _commands(service: str) -> ConsumerQueue:
    return ConsumerQueue(f"{service}.commands", COMMANDS, (f"{COMMAND_PREFIX[service]}.#",))


QUEUES: dict[str, ConsumerQueue] = {
    q.name: q
    for q in (
        _events("job-capture", "job.priced", "job.authorized", "job.denied", "job.cancelled"),
        _commands("job-capture"),
        _events("pricing", "job.captured", "user.groups_set"),
        _commands("pricing"),
        _events(
            "account-ledger",
            "job.priced",
            "job.printed",
            "job.failed",
            "job.cancelled",
            "job.unconfirmed",
        ),
        _commands("account-ledger"),
        _events(
            "notification",
            "job.charged",
            "job.denied",
            "account.balance_changed",
            "account.balance_low",
            "user.added",
            "user.disabled",
            "user.enabled",
            "job.input_required",
            "job.authorized",
            "job.cancelled",
        ),
        _commands("notification"),
        # What users answer from their desktops (`user.<login>.<kind>`).
        ConsumerQueue("notification.replies", DESKTOP_REPLIES, (desktop_key("*", "*"),)),
        # The ledger's replies to the answers notification forwards (no binding: replies
        # come through the default exchange, addressed by `reply_to`).
        ConsumerQueue(NOTIFICATION_ANSWERS, "", ()),
    )
}


def consumer_queues(service: str) -> list[ConsumerQueue]:
    return [q for q in QUEUES.values() if q.name.startswith(f"{service}.")]


def queue_arguments(queue: ConsumerQueue) -> dict:
    return {
        "x-queue-type": "quorum",
        "x-delivery-limit": DELIVERY_LIMIT,
        "x-dead-letter-exchange": DEAD_LETTER,
        "x-dead-letter-routing-key": queue.name,
    }


async def declare_topology(channel: AbstractChannel, service: str | None = None) -> None:
    """Declare the exchanges and the consumer queues: all of them, or `service`'s own.

    A service declares only its own queues: declaring a queue that dead-letters needs
    the right to read it, and a service may read no queue but its own. The whole set is
    declared once by whoever installs Platen (`declare_all`), with broker-admin rights,
    so that an event finds its consumers' queues before those consumers first start.
    """
    unrouted = await channel.declare_exchange(UNROUTED, ExchangeType.FANOUT, durable=True)
    unrouted_q = await channel.declare_queue(
        UNROUTED, durable=True, arguments={"x-queue-type": "quorum"}
    )
    await unrouted_q.bind(unrouted)
    await channel.declare_exchange(
        EVENTS, ExchangeType.TOPIC, durable=True, arguments={"alternate-exchange": UNROUTED}
    )
    for name in (COMMANDS, DESKTOP, DESKTOP_REPLIES):
        await channel.declare_exchange(name, ExchangeType.TOPIC, durable=True)
    dlx = await channel.declare_exchange(DEAD_LETTER, ExchangeType.DIRECT, durable=True)
    for queue in QUEUES.values() if service is None else consumer_queues(service):
        dlq = await channel.declare_queue(
            queue.dead_letter_queue, durable=True, arguments={"x-queue-type": "quorum"}
        )
        await dlq.bind(dlx, routing_key=queue.name)
        q = await channel.declare_queue(queue.name, durable=True, arguments=queue_arguments(queue))
        for key in queue.routing_keys:
            await q.bind(queue.exchange, routing_key=key)


async def declare_desktop_queue(channel: AbstractChannel, login: str) -> None:
    """The durable queue a user's desktop reads, bound to `user.<login>.#`."""
    q = await channel.declare_queue(desktop_queue(login), durable=True)
    await q.bind(DESKTOP, routing_key=desktop_key(login, "#"))


async def declare_all(url: str) -> None:
    connection = await aio_pika.connect(url)
    async with connection:
        await declare_topology(await connection.channel())
