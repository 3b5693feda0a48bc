"""Service health and the generic error reply."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, Field

from platen.events.base import Command, Query, Reply, upcasts
from platen.events.registry import register


@register
class Ping(Query):
    """Query to any service (`<service>.ping`)."""

    message_type: ClassVar[str] = "service.ping"


@register
class Pong(Reply):
    """A service's answer to `Ping`: who it is, and how its outbox stands.

    Version 2 adds the outbox: messages committed but not yet published (`outbox_waiting`),
    how long the oldest unpublished one has waited (`outbox_oldest_seconds`; none when the
    outbox is empty), and how many the broker refused for good (`outbox_refused`), which
    wait for an administrator.

    Version 3 says which process answered (`instance`: its host and process id, so the
    replicas of a service can be told apart), where its Prometheus metrics and health are
    served (`metrics_url`), and which of its readiness checks failed (`unready`, by name,
    with why; empty when ready)."""

    message_type: ClassVar[str] = "service.pong"
    schema_version: ClassVar[int] = 3
    service: str
    version: str
    outbox_waiting: int = Field(default=0, ge=0)
    outbox_oldest_seconds: float | None = Field(default=None, ge=0)
    outbox_refused: int = Field(default=0, ge=0)
    instance: str = Field(default="", max_length=300)
    metrics_url: str | None = Field(default=None, max_length=300)
    unready: dict[str, str] = Field(default_factory=dict)

    @upcasts(1)
    def _v1_to_v2(body: dict) -> dict:
        # Version 1 said nothing of the outbox: read as an empty one.
        return body

    @upcasts(2)
    def _v2_to_v3(body: dict) -> dict:
        # Version 2 named no process and no metrics: unknown, and nothing reported unready.
        return body


@register
class ErrorReply(Reply):
    """The answer to a request that could not be carried out, with the reason."""

    message_type: ClassVar[str] = "error"
    error: str


class DeadLetter(BaseModel):
    """A message a service could not handle, as it waits in one of its dead-letter queues."""

    queue: str  # the queue it was dead-lettered from
    message_id: str
    message_type: str
    reason: str  # the `platen-error` header, or the broker's `x-death` reason
    correlation_id: str | None = None  # the job (or account) it concerns, if it says
    size: int = Field(ge=0)  # of its body, in bytes


@register
class ListDeadLetters(Query):
    """Query to any service (`<prefix>.dead_letters.list`): the messages in its dead-letter
    queues, oldest first, up to `limit` (they stay where they are)."""

    message_type: ClassVar[str] = "service.dead_letters.list"
    limit: int = Field(default=100, ge=1, le=1000)


@register
class DeadLettersListed(Reply):
    message_type: ClassVar[str] = "service.dead_letters.list.reply"
    letters: list[DeadLetter]
    more: bool = False  # there were more than `limit`


@register
class ReplayDeadLetters(Command):
    """Command to any service (`<prefix>.dead_letters.replay`): put dead-lettered messages
    back on the queue they came from, to be handled again (once: the inbox still skips any
    that had been applied). `message_ids` empty: all of them."""

    message_type: ClassVar[str] = "service.dead_letters.replay"
    message_ids: list[str] = Field(default_factory=list, max_length=1000)


@register
class DeadLettersReplayed(Reply):
    message_type: ClassVar[str] = "service.dead_letters.replay.reply"
    replayed: list[str]  # the message ids put back
