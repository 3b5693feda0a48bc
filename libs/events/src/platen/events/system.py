"""Service health and the generic error reply."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from platen.events.base import Message
from platen.events.registry import register, upcaster


@register
class Ping(Message):
    """Query to any service (`<service>.ping`)."""

    message_type: ClassVar[str] = "service.ping"


@register
class Pong(Message):
    """A service's answer to `Ping`: who it is, and how its outbox stands.

    Version 2 adds the outbox: messages committed but not yet published (`outbox_waiting`),
    how long the oldest unpublished one has waited (`outbox_oldest_seconds`; none when the
    outbox is empty), and how many the broker refused for good (`outbox_refused`), which
    wait for an administrator."""

    message_type: ClassVar[str] = "service.pong"
    schema_version: ClassVar[int] = 2
    service: str
    version: str
    outbox_waiting: int = Field(default=0, ge=0)
    outbox_oldest_seconds: float | None = Field(default=None, ge=0)
    outbox_refused: int = Field(default=0, ge=0)


@upcaster("service.pong", 1)
def _pong_v1_to_v2(body: dict) -> dict:
    # Version 1 said nothing of the outbox: read as an empty one.
    return body


@register
class ErrorReply(Message):
    """The answer to a request that could not be carried out, with the reason."""

    message_type: ClassVar[str] = "error"
    error: str
