"""Looking into a service's dead-letter queues, and putting messages back to be handled.

A message is dead-lettered when it cannot be handled (see handling.py); after the cause is
fixed (a bug, a printer that was not set up, a broker policy), an administrator replays it
with `platenctl dlq replay`. Each service does this for its own queues: only it may read
them and write to them.

A replayed message is the same message (type, version, id, correlation id, marks) sent
again to the queue it came from through `platen.replay`, where every service queue is
bound under its own name and a service may publish only its own queues' names (nobody may
use the default exchange); the dead-lettering headers are left behind. Its AMQP `user_id`
cannot travel (the broker allows only the sender's own), so the copy goes out under the
service's own `user_id` and names the first sender, as the broker proved it, in a header
believed only on the service's own messages (`senders.FIRST_SENDER`). So a command
checked by its sender (an integrator's `capture.submit` dead-lettered at the delivery
limit, after crashes returned it again and again) is accepted when replayed, and still
only as from whom it first came.
"""

from __future__ import annotations

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from platen.events.routing import REPLAY
from platen.events.system import DeadLetter
from platen.messaging.codec import HEADER_ERROR, HEADER_QUEUE
from platen.messaging.publisher import Publisher
from platen.messaging.senders import copied_headers
from platen.messaging.topology import consumer_queues

# Headers the dead-lettering added (the broker's and ours): not replayed.
_DEAD_LETTER_HEADERS = (HEADER_ERROR, HEADER_QUEUE, "x-death", "x-delivery-count")


def copy_of(
    raw: AbstractIncomingMessage,
    own_user: str | None,
    *,
    body: bytes | None = None,
    drop: tuple[str, ...] = (),
    reply_to: str | None = None,
    headers: dict[str, object] | None = None,
) -> aio_pika.Message:
    """The copy of `raw` this service publishes (to a dead-letter queue, or replayed),
    naming its first sender (`senders.copied_headers`), with `headers` added."""
    kept, user_id = copied_headers(raw.headers, raw.user_id, own_user, drop=drop)
    return aio_pika.Message(
        raw.body if body is None else body,
        headers={**kept, **(headers or {})},
        content_type=raw.content_type,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=raw.message_id,
        correlation_id=raw.correlation_id,
        type=raw.type,
        app_id=raw.app_id,
        timestamp=raw.timestamp,
        reply_to=reply_to,
        user_id=user_id,
    )


def _reason(raw: AbstractIncomingMessage) -> str:
    headers = raw.headers or {}
    error = headers.get(HEADER_ERROR)
    if isinstance(error, bytes):
        error = error.decode(errors="replace")
    if isinstance(error, str) and error:
        return error[:500]
    deaths = headers.get("x-death")
    if isinstance(deaths, list) and deaths and isinstance(deaths[0], dict):
        reason = deaths[0].get("reason")
        return reason.decode() if isinstance(reason, bytes) else str(reason)
    return "unknown"


def describe(queue: str, raw: AbstractIncomingMessage) -> DeadLetter:
    return DeadLetter(
        queue=queue,
        message_id=raw.message_id or "",
        message_type=(raw.type or "")[:200],
        reason=_reason(raw),
        correlation_id=(raw.correlation_id or None) and raw.correlation_id[:200],
        size=len(raw.body),
    )


async def _drain(channel: AbstractChannel, dlq: str, limit: int) -> list[AbstractIncomingMessage]:
    """Up to `limit` messages of `dlq`, taken but not yet settled."""
    queue = await channel.get_queue(dlq, ensure=False)
    taken: list[AbstractIncomingMessage] = []
    while len(taken) < limit:
        raw = await queue.get(no_ack=False, fail=False)
        if raw is None:
            break
        taken.append(raw)
    return taken


async def peek(channel: AbstractChannel, service: str, limit: int) -> tuple[list[DeadLetter], bool]:
    """The dead letters of `service`, up to `limit`, and whether there are more. Each is
    given back to its queue untouched (its dead-letter queue has no delivery limit)."""
    letters: list[DeadLetter] = []
    for q in consumer_queues(service):
        taken = await _drain(channel, q.dead_letter_queue, limit + 1 - len(letters))
        letters += [describe(q.name, raw) for raw in taken]
        for raw in taken:
            await raw.reject(requeue=True)
        if len(letters) > limit:
            break
    return letters[:limit], len(letters) > limit


async def replay(
    channel: AbstractChannel,
    publisher: Publisher,
    service: str,
    ids: set[str],
    own_user: str | None = None,
) -> list[str]:
    """Send the chosen dead letters of `service` (all when `ids` is empty) back to the
    queues they came from; returns their message ids. Each is removed from its dead-letter
    queue only once the broker confirmed the copy. `own_user`: the broker user the service
    signs in as (None: unknown, and the first sender is not carried)."""
    replayed: list[str] = []
    for q in consumer_queues(service):
        taken = await _drain(channel, q.dead_letter_queue, 10_000)
        try:
            for raw in taken:
                if ids and raw.message_id not in ids:
                    continue
                copy = copy_of(raw, own_user, drop=_DEAD_LETTER_HEADERS, reply_to=raw.reply_to)
                await publisher.publish(REPLAY, q.name, copy)
                await raw.ack()
                replayed.append(raw.message_id or "")
        finally:
            for raw in taken:
                if not raw.processed:
                    await raw.reject(requeue=True)
    return replayed
