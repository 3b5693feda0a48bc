"""One declaration per subscription: what the runtime makes of it (handlers, queries, what
a service may emit). No broker, no database. That the bindings, permissions and AsyncAPI
document follow from it is libs/contract-docs/tests/test_one_declaration.py."""

from __future__ import annotations

from typing import ClassVar

import pytest
import structlog

from platen.events.accounts import JobCharged
from platen.events.base import Envelope, Message
from platen.events.jobs import JobCaptured, JobPrinted
from platen.events.printers import AddPrinter
from platen.events.routing import COMMANDS
from platen.messaging.fakes import FakeContext
from platen.messaging.handling import HandlerContext
from platen.messaging.subscriptions import Subscriptions, UndeclaredMessage

from .test_dispatcher import captured_body


def test_a_message_has_one_handler_per_queue_and_a_command_the_services_prefix():
    subscribe = Subscriptions("audit", command_prefix="audit")

    @subscribe.event(JobPrinted)
    async def first(ctx, event) -> None: ...

    with pytest.raises(ValueError, match="already has a handler"):
        subscribe.event(JobPrinted)(first)
    with pytest.raises(ValueError, match=r"not pricing\.printer\.add"):
        subscribe.command(AddPrinter)


async def test_emit_refuses_a_message_the_service_does_not_declare():
    subscribe = Subscriptions("audit", command_prefix="audit", publishes=(JobCaptured,))
    captured = JobCaptured.model_validate_json(captured_body())
    fake = FakeContext(subscriptions=subscribe)

    await fake.emit(captured)
    with pytest.raises(UndeclaredMessage, match=r"JobCaptured on platen\.commands"):
        await fake.emit(captured, exchange=COMMANDS)
    assert fake.messages() == [captured]

    # The real context refuses before the outbox is touched (there is no connection here).
    real = HandlerContext(
        None,  # type: ignore[arg-type]
        Envelope("audit", 1, "audit"),
        "audit",
        None,  # type: ignore[arg-type]
        structlog.get_logger(),
        subscriptions=subscribe,
    )
    with pytest.raises(UndeclaredMessage, match="JobCharged"):
        await real.emit(JobCharged.model_construct())


def test_a_handler_method_must_be_bound_to_its_instance():
    subscribe = Subscriptions("audit", command_prefix="audit")

    class Handlers:
        @subscribe.event(JobPrinted)
        async def on_printed(self, ctx, event) -> None: ...

    with pytest.raises(ValueError, match="bind"):
        subscribe.handlers("events")
    handlers = Handlers()
    subscribe.bind(handlers)
    assert subscribe.handlers("events")[JobPrinted].__self__ is handlers


def test_a_query_is_known_by_its_declaration_or_by_its_kind_in_the_contract():
    class AskAudit(Message):
        message_type: ClassVar[str] = "audit.ask"
        message_kind: ClassVar[str] = "query"

    class TellAudit(Message):
        message_type: ClassVar[str] = "audit.tell"
        message_kind: ClassVar[str] = "command"

    subscribe = Subscriptions("audit", command_prefix="audit")
    subscribe.command(AskAudit)(lambda ctx, q: None)
    subscribe.command(TellAudit)(lambda ctx, c: None)
    assert subscribe.queries == {AskAudit}
    with pytest.raises(ValueError, match="TellAudit is a command, not a query"):
        subscribe.query(TellAudit)


def test_only_a_queue_purpose_the_service_may_have_is_batched():
    subscribe = Subscriptions("audit", command_prefix="audit", batched=("events",))
    assert subscribe.batched == {"events"}
    assert Subscriptions("audit", command_prefix="audit").batched == frozenset()
    with pytest.raises(ValueError, match="no queue purpose"):
        Subscriptions("audit", command_prefix="audit", batched=("event",))


def _spec(batch_size: int | None):
    from pathlib import Path

    from platen.messaging.service import ServiceSpec
    from platen.messaging.subscriptions import EVENT_QUEUE

    subscribe = Subscriptions(
        "audit", command_prefix="audit", batched=(EVENT_QUEUE,), batch_size=batch_size
    )

    @subscribe.event(JobPrinted)
    async def on_printed(ctx, event) -> None: ...

    return ServiceSpec("audit", "audit", Path("."), subscribe)


def test_a_batched_queue_takes_the_batch_size_its_service_declares_unless_told_otherwise():
    """The batch size is the batched queue's prefetch too; the environment's
    PLATEN_BATCH_SIZE wins, PLATEN_PREFETCH is the size of a service that declares none,
    and PLATEN_BATCH=0 batches nothing."""
    from platen.messaging.service import batch_sizes
    from platen.messaging.settings import Settings

    plain = Settings("amqp://", "postgresql://", prefetch=32)
    assert batch_sizes(_spec(64), plain) == {"audit.events": 64}
    assert batch_sizes(_spec(None), plain) == {"audit.events": 32}
    told = Settings("amqp://", "postgresql://", prefetch=32, batch_size=8)
    assert batch_sizes(_spec(64), told) == {"audit.events": 8}
    off = Settings("amqp://", "postgresql://", batch=False)
    assert batch_sizes(_spec(64), off) == {}
    with pytest.raises(ValueError, match="a batch of 0"):
        Subscriptions("audit", command_prefix="audit", batch_size=0)


def test_the_batch_size_is_read_from_the_environment(monkeypatch):
    from platen.messaging.settings import Settings

    monkeypatch.delenv("PLATEN_BATCH_SIZE", raising=False)
    assert Settings.from_env().batch_size is None
    monkeypatch.setenv("PLATEN_BATCH_SIZE", "16")
    assert Settings.from_env().batch_size == 16
