"""The contract map: who sends and receives each message, read from the code (pure logic).

These tests give the map small made-up specs and message sets: libs cannot import the
services. The map of the real services is checked through the AsyncAPI document
(tests/test_asyncapi.py).
"""

from pathlib import Path
from typing import ClassVar

import pytest

from platen.contract_docs.contract_map import (
    COMMAND,
    EVENT,
    REPLY,
    ContractMapError,
    contract_map,
    topic_matches,
)
from platen.events.accounts import UserGroupsSet
from platen.events.base import Message
from platen.events.jobs import JobCaptured
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
from platen.messaging.service import ServiceSpec
from platen.messaging.subscriptions import Subscriptions

# What every service answers on its commands queue, whatever its own handlers.
BUILT_IN = (Ping, Pong, ListDeadLetters, DeadLettersListed, ReplayDeadLetters, DeadLettersReplayed)


def _models(*models: type[Message]) -> dict[str, type[Message]]:
    return {m.message_type: m for m in (*BUILT_IN, *models)}


def _pricing(handlers: dict) -> ServiceSpec:
    subscribe = Subscriptions("pricing", command_prefix="pricing")
    declare = {"events": subscribe.event, "commands": subscribe.command}
    for purpose, by_model in handlers.items():
        for model, handler in by_model.items():
            declare[purpose](model)(handler)
    return ServiceSpec(
        name="pricing", schema="pricing", migrations=Path("."), subscriptions=subscribe
    )


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
