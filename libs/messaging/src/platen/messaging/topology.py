"""The whole broker topology, derived from the services' declared subscriptions.

The installer declares all of it once (`declare_all`); each service declares the exchanges
and its own queues again at start-up (declarations are idempotent). Events nobody consumes
go to the alternate exchange `platen.unrouted` instead of being dropped.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aio_pika.abc import AbstractChannel, AbstractRobustChannel, ExchangeType

from platen.events.routing import (
    COMMANDS,
    DEAD_LETTER,
    DEAD_LETTERS,
    DESKTOP,
    DESKTOP_REPLIES,
    EVENTS,
    REPLAY,
    REPLIES,
    UNROUTED,
    desktop_key,
    desktop_queue,
    login_of_broker_user,
    reply_key,
)
from platen.messaging import discovery, failover
from platen.messaging.subscriptions import (
    ANSWER_QUEUE,
    DESKTOP_REPLY_QUEUE,
    EVENT_QUEUE,
    Subscriptions,
)

if TYPE_CHECKING:
    from platen.messaging.service import ServiceSpec

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


NOTIFICATION_ANSWERS = "notification.answers"


def service_queues(subscriptions: Subscriptions) -> list[ConsumerQueue]:
    """A service's queues and their bindings, from what its handlers declare."""
    service = subscriptions.service
    queues = [
        # Always there: every service answers `<prefix>.ping` and its dead-letter queries.
        ConsumerQueue(f"{service}.commands", COMMANDS, (f"{subscriptions.command_prefix}.#",))
    ]
    if events := subscriptions.received(EVENT_QUEUE):
        keys = tuple(m.message_type for m in events)
        queues.append(ConsumerQueue(f"{service}.events", EVENTS, keys))
    if subscriptions.received(DESKTOP_REPLY_QUEUE):
        # Every kind a desktop may send (`user.<login>.<kind>`): one it should not send is
        # dead-lettered with a reason rather than dropped unrouted.
        queues.append(
            ConsumerQueue(f"{service}.replies", DESKTOP_REPLIES, (desktop_key("*", "*"),))
        )
    if subscriptions.received(ANSWER_QUEUE):
        # Bound by the service itself, under its own broker user's reply key (the key its
        # requests name as `reply_to`), which only it knows and may bind under.
        queues.append(ConsumerQueue(f"{service}.answers", REPLIES, ()))
    return sorted(queues, key=lambda q: q.name)


def consumer_queues(service: str | ServiceSpec) -> list[ConsumerQueue]:
    """One service's queues (a name: found among the installed services)."""
    spec = discovery.spec(service) if isinstance(service, str) else service
    return service_queues(spec.subscriptions)


def all_queues(specs: Iterable[ServiceSpec] | None = None) -> dict[str, ConsumerQueue]:
    """Every service's queues by name (default: every installed service)."""
    specs = discovery.specs().values() if specs is None else specs
    return {q.name: q for spec in specs for q in consumer_queues(spec)}


def queue_arguments(queue: ConsumerQueue) -> dict:
    return {
        "x-queue-type": "quorum",
        "x-delivery-limit": DELIVERY_LIMIT,
        "x-dead-letter-exchange": DEAD_LETTER,
        "x-dead-letter-routing-key": queue.name,
    }


async def declare_topology(
    channel: AbstractChannel, service: str | ServiceSpec | None = None, user: str | None = None
) -> None:
    """Declare the exchanges and the consumer queues: all of them, or `service`'s own.
    Each queue is bound to `platen.replay` under its own name (where its dead letters are
    put back); a queue of replies, by `service` signed in as `user`, under `user`'s key.

    A service declares only its own queues: declaring a queue that dead-letters needs
    the right to read it, and a service may read no queue but its own. The whole set is
    declared once by whoever installs Platen (`declare_all`), with broker-admin rights,
    so that an event finds its consumers' queues before those consumers first start.
    """
    if service is None:  # the installer: every exchange
        unrouted = await channel.declare_exchange(UNROUTED, ExchangeType.FANOUT, durable=True)
        unrouted_q = await channel.declare_queue(
            UNROUTED, durable=True, arguments={"x-queue-type": "quorum"}
        )
        await unrouted_q.bind(unrouted)
        await channel.declare_exchange(
            EVENTS, ExchangeType.TOPIC, durable=True, arguments={"alternate-exchange": UNROUTED}
        )
        for name in (COMMANDS, DESKTOP, DESKTOP_REPLIES, REPLIES, REPLAY, DEAD_LETTERS):
            await channel.declare_exchange(name, ExchangeType.TOPIC, durable=True)
        dlx = await channel.declare_exchange(DEAD_LETTER, ExchangeType.DIRECT, durable=True)
    else:
        # A service may not configure exchanges (configure also means delete): it finds
        # them as the installer declared them.
        dlx = await channel.get_exchange(DEAD_LETTER, ensure=True)
    for queue in all_queues().values() if service is None else consumer_queues(service):
        dlq = await channel.declare_queue(
            queue.dead_letter_queue, durable=True, arguments={"x-queue-type": "quorum"}
        )
        await dlq.bind(dlx, routing_key=queue.name)
        await dlq.bind(DEAD_LETTERS, routing_key=queue.name)
        q = await channel.declare_queue(queue.name, durable=True, arguments=queue_arguments(queue))
        for key in queue.routing_keys:
            await q.bind(queue.exchange, routing_key=key)
        await q.bind(REPLAY, routing_key=queue.name)
        if queue.exchange == REPLIES and user is not None and service is not None:
            await q.bind(REPLIES, routing_key=reply_key(user, queue.name))


async def declare_desktop_queue(channel: AbstractChannel, identity: str) -> None:
    """The durable queue desktop identity `identity` reads (a login, or `<login>~<desktop>`
    for a signed-in desktop), bound to `user.<login>.#`: each of a user's desktops has its
    own, so each gets every message. (Bounded by the `platen-desktop-queues` policy.)

    A robust channel is told not to keep it: it would hold every user's queue and binding
    in memory (about 3 KiB a user: 28 MiB of notification's at 10,000 users) and declare
    them all again on each reconnection. The queue is durable, and a message that finds
    none makes the outbox declare it again (`Publisher.ensure_desktop_queue`)."""
    keep = {"robust": False} if isinstance(channel, AbstractRobustChannel) else {}
    q = await channel.declare_queue(desktop_queue(identity), durable=True, **keep)
    await q.bind(DESKTOP, routing_key=desktop_key(login_of_broker_user(identity), "#"), **keep)


async def delete_desktop_queue(channel: AbstractChannel, identity: str) -> None:
    """A revoked desktop's queue: nobody can read it again, so nothing may pile up there."""
    await channel.queue_delete(desktop_queue(identity))


async def declare_all(url: str) -> None:
    connection = await failover.connect(url)
    async with connection:
        await declare_topology(await connection.channel())
