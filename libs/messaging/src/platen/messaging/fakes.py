"""A handler context with no broker and no database, for service-layer tests.

A handler reaches its world only through its context: `ctx.store` (the service's store
over the delivery's transaction) and `ctx.emit` (the outbox). `FakeContext` is the real
`HandlerContext` but for where an emitted message goes: it takes a fake store and records
what the handler emits, so a test can run a handler as the dispatcher would and assert on
the state it left and the messages it sent, in milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import structlog

from platen.events.base import Envelope, Message
from platen.messaging.handling import HandlerContext
from platen.messaging.marks import checked
from platen.messaging.outbox import Where


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
class FakeContext(HandlerContext):
    """`HandlerContext` with every field optional, its emits recorded in `emitted`."""

    conn: Any = None
    envelope: Envelope = field(default_factory=lambda: Envelope("test", 1, "test"))
    producer: str = "test"
    publisher: Any = None
    log: Any = field(default_factory=lambda: structlog.get_logger("test"))
    emitted: list[Emitted] = field(default_factory=list)

    def mark(self, **fields: str) -> None:
        # Not bound to the log context as the real one is: a test's marks must not stay on
        # the log lines of the tests after it.
        self.marks.update(checked(fields))

    async def keep(self, message: Message, envelope: Envelope, where: Where) -> str:
        self.emitted.append(
            Emitted(message, envelope.correlation_id, **{**where, "marks": dict(self.marks)})
        )
        return f"fake-{len(self.emitted)}"

    async def commit(self) -> None:
        """Run what the handler left for after the commit, as the dispatcher would."""
        effects, self.effects = self.effects, []
        for effect in effects:
            await effect()

    def messages(self, kind: type[Message] | None = None) -> list[Message]:
        """The emitted messages, optionally only those of one type."""
        return [e.message for e in self.emitted if kind is None or isinstance(e.message, kind)]
