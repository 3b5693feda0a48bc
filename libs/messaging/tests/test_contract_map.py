"""The contract map: who sends and receives each message, read from the code (pure logic).

These tests give the map small made-up specs and message sets: libs cannot import the
services. The map of the real services is checked through the AsyncAPI document
(tests/test_asyncapi.py).
"""

from pathlib import Path
from typing import ClassVar

import pytest

from platen.events.accounts import UserGroupsSet
from platen.events.base import Message
from platen.events.jobs import JobCaptured, JobPrinted
from platen.events.printers import AddPrinter, PrinterView
from platen.events.system import (
    DeadLettersListed,
    DeadLettersReplayed,
    ErrorReply,
    ListDeadLetters,
    Ping,
    Pong,
    ReplayDeadLetters,
)
from platen.messaging.contract_map import (
    COMMAND,
    EVENT,
    REPLY,
    ContractMapError,
    contract_map,
    topic_matches,
)
from platen.messaging.service import ServiceSpec

# What every service answers on its commands queue, whatever its own handlers.
BUILT_IN = (Ping, Pong, ListDeadLetters, DeadLettersListed, ReplayDeadLetters, DeadLettersReplayed)


def _models(*models: type[Message]) -> dict[str, type[Message]]:
    return {m.message_type: m for m in (*BUILT_IN, *models)}


def _pricing(handlers: dict) -> ServiceSpec:
    return ServiceSpec(name="pricing", schema="pricing", migrations=Path("."), handlers=handlers)


async def on_event(ctx, msg) -> None:
    return None


async def on_add_printer(ctx, msg: AddPrinter) -> PrinterView | ErrorReply:
    raise AssertionError("never called")


async def unannotated(ctx, msg):
    return None


def test_topic_matching_follows_rabbitmq():
    assert topic_matches("ledger.#", "ledger.user.add")
    assert topic_matches("ledger.#", "ledger")
    assert topic_matches("user.*.*", "user.{login}.answer")
    assert topic_matches("user.{login}.#", "user.{login}.job_prompt")
    assert not topic_matches("user.*.*", "user.alice.answer.extra")
    assert not topic_matches("job.captured", "job.captured.more")
    assert not topic_matches("ledger.#", "pricing.quote")


def test_the_map_reads_senders_from_permissions_and_receivers_from_bindings():
    spec = _pricing(
        {
            "events": {JobCaptured: on_event, UserGroupsSet: on_event},
            "commands": {AddPrinter: on_add_printer},
        }
    )
    models = _models(JobCaptured, UserGroupsSet, AddPrinter, PrinterView, ErrorReply)

    contract = contract_map([spec], models)

    routes = {(r.kind, r.routing_key, r.model): r for r in contract.routes}
    captured = routes[(EVENT, "job.captured", JobCaptured)]
    assert captured.senders == ("job-capture",)
    [receiver] = contract.receivers(captured)
    assert (receiver.consumer, receiver.queue.name, receiver.bindings) == (
        "pricing",
        "pricing.events",
        ("job.captured",),
    )
    add = routes[(COMMAND, "pricing.printer.add", AddPrinter)]
    assert add.replies == (ErrorReply, PrinterView)
    assert "platenctl" in add.senders and "pricing" not in add.senders
    # The ping every service answers is addressed under the service's own prefix.
    assert (COMMAND, "pricing.ping", Ping) in routes
    reply = routes[(REPLY, "{reply_to}", PrinterView)]
    assert (reply.senders, reply.answers) == (("pricing",), ("pricing.printer.add",))


def test_a_message_nobody_sends_or_handles_is_an_error():
    class Orphan(Message):
        message_type: ClassVar[str] = "test.orphan"

    with pytest.raises(ContractMapError, match=r"test\.orphan"):
        contract_map([], {Orphan.message_type: Orphan})


def test_a_command_handler_must_name_its_replies():
    spec = _pricing({"commands": {AddPrinter: unannotated}})

    with pytest.raises(ContractMapError, match="annotate its return type"):
        contract_map([spec], _models(AddPrinter))


def test_a_handler_for_a_message_its_queue_is_not_bound_to_is_an_error():
    spec = _pricing({"events": {JobCaptured: on_event, UserGroupsSet: on_event}})
    spec.handlers["events"][JobPrinted] = on_event

    with pytest.raises(ContractMapError, match=r"pricing handles job\.printed on pricing\.events"):
        contract_map([spec], _models(JobCaptured, UserGroupsSet, JobPrinted))


def test_a_binding_nobody_handles_is_an_error():
    spec = _pricing({"events": {JobCaptured: on_event}})

    with pytest.raises(ContractMapError, match=r"bound to user\.groups_set"):
        contract_map([spec], _models(JobCaptured, UserGroupsSet))


def test_handlers_for_a_queue_the_service_has_not_are_an_error():
    spec = _pricing({"event": {JobCaptured: on_event}})

    with pytest.raises(ContractMapError, match="queues it has not"):
        contract_map([spec], _models(JobCaptured))
