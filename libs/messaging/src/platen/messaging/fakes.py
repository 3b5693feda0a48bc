"""A handler context with no broker and no database, for service-layer tests.

A handler reaches its world only through its context: `ctx.store` (the service's store
over the delivery's transaction) and `ctx.emit` (the outbox). `FakeContext` takes a fake
store and records what the handler emits, so a test can run a handler as the dispatcher
would and assert on the state it left and the messages it sent, in milliseconds.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from platen.events.base import Envelope, Message
from platen.events.routing import EVENTS
from platen.messaging.marks import checked
from platen.messaging.subscriptions import Subscriptions


@dataclass
class Emitted:
    """One message a handler emitted, with where it would have gone."""

    message: Message
    correlation_id: str | None
    exchange: str
    routing_key: str
    expiration_ms: int | None
    reply_to: str | None
    marks: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeContext:
    """Stands in for `HandlerContext` (same attributes a handler reads)."""

    store: Any = None
    producer: str = "test"
    user_id: str | None = None
    routing_key: str = ""
    envelope: Envelope = field(default_factory=lambda: Envelope("test", 1, "test"))
    emitted: list[Emitted] = field(default_factory=list)
    log: Any = field(default_factory=lambda: structlog.get_logger("test"))
    conn: Any = None
    publisher: Any = None
    marks: dict[str, str] = field(default_factory=dict)
    # Given, `emit` refuses what the service does not declare it publishes, as the real one.
    subscriptions: Subscriptions | None = None
    prepared: Any = None

    def mark(self, **fields: str) -> None:
        self.marks.update(checked(fields))

    effects: list[Callable[[], Awaitable[object]]] = field(default_factory=list)

    def after_commit(self, effect: Callable[[], Awaitable[object]]) -> None:
        self.effects.append(effect)

    async def commit(self) -> None:
        """Run what the handler left for after the commit, as the dispatcher would."""
        effects, self.effects = self.effects, []
        for effect in effects:
            await effect()

    async def emit(
        self,
        message: Message,
        *,
        correlation_id: str | None = None,
        exchange: str = EVENTS,
        routing_key: str | None = None,
        expiration_ms: int | None = None,
        reply_to: str | None = None,
    ) -> str:
        if self.subscriptions is not None:
            self.subscriptions.check_emit(message, exchange)
        self.emitted.append(
            Emitted(
                message,
                correlation_id,
                exchange,
                routing_key or message.message_type,
                expiration_ms,
                reply_to,
                dict(self.marks),
            )
        )
        return f"fake-{len(self.emitted)}"

    async def emit_latest(
        self,
        key: str,
        make: Callable[[], Awaitable[Message]],
        *,
        correlation_id: str | None = None,
    ) -> None:
        """One message at a time, as `HandlerContext.emit_latest` alone: emitted now."""
        await self.emit(await make(), correlation_id=correlation_id)

    def messages(self, kind: type[Message] | None = None) -> list[Message]:
        """The emitted messages, optionally only those of one type."""
        return [e.message for e in self.emitted if kind is None or isinstance(e.message, kind)]
