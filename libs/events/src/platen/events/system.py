"""Service health and the generic error reply."""

from __future__ import annotations

from typing import ClassVar

from platen.events.base import Message
from platen.events.registry import register


@register
class Ping(Message):
    """Query to any service (`<service>.ping`)."""

    message_type: ClassVar[str] = "service.ping"


@register
class Pong(Message):
    message_type: ClassVar[str] = "service.pong"
    service: str
    version: str


@register
class ErrorReply(Message):
    """The answer to a request that could not be carried out, with the reason."""

    message_type: ClassVar[str] = "error"
    error: str
