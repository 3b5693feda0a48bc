"""The client's contract (platen.client.contract, msgspec) is the pydantic one, generated.

The pydantic models of platen.events are the contract; the client reads and writes its
messages with classes generated from them (apps/client/generate_contract.py). Here: the
generated module is the one the models make now; every message the server can send a
desktop, built with the pydantic models and written by the server's codec, reads in the
client to the same values; every reply the client writes is valid in the pydantic model;
and what one side refuses, the other refuses too, for the same reason.
"""

from __future__ import annotations

import difflib
import importlib.util
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from platen.client import contract, wire
from platen.client.model import Choice, ClientModel
from platen.events import base, registry
from platen.events import desktop as server
from platen.events.client_options import ClientHello, ClientOptionsNotice

GENERATOR = Path(__file__).resolve().parents[1] / "generate_contract.py"
JOB = uuid.UUID("0f0e0d0c-0b0a-0908-0706-050403020100")
WHEN = datetime(2026, 12, 2, 7, 30, 15, 123456, tzinfo=UTC)


@pytest.fixture(scope="module")
def generator():
    # Not a package: loaded from its file, as `make contract` runs it.
    spec = importlib.util.spec_from_file_location("platen_client_generate_contract", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_generated_module_is_the_one_the_models_make(generator):
    written = generator.MODULE.read_text(encoding="utf-8")
    made = generator.render()
    diff = "".join(
        difflib.unified_diff(
            written.splitlines(True), made.splitlines(True), "checked in", "from the models"
        )
    )
    assert made == written, f"run `make contract`:\n{diff[:3000]}"


def test_the_generator_refuses_what_it_cannot_translate(generator):
    from typing import Annotated

    from pydantic import AfterValidator

    # A validator it does not know (nested in an optional type, too), or a type it has no
    # spelling for, stops it: a guess would let the two contracts drift apart unseen.
    odd = Annotated[str, AfterValidator(str.strip)]
    with pytest.raises(generator.Untranslatable, match=r"X\.y: the constraint"):
        generator.type_of(odd | None, [], "X.y", [])
    with pytest.raises(generator.Untranslatable, match=r"X\.y: the type"):
        generator.type_of(complex, [], "X.y", [])
    assert generator.type_of(base.Login, [], "X.y", []) == "Login"
    assert generator.type_of(list[server.PromptAccount], [], "X.y", []) == "list[PromptAccount]"


def test_the_same_messages_types_versions_and_kinds():
    sent = {
        m.message_type: (m.__name__, m.schema_version, m.desktop_kind) for m in server.DESKTOP_KINDS
    }
    assert {
        t: (m.__name__, m.schema_version, m.desktop_kind)
        for t, m in contract.DESKTOP_MESSAGES.items()
    } == sent
    assert {
        (m.__name__, m.message_type, m.schema_version, k) for m, k in contract.REPLY_KINDS.items()
    } == {(m.__name__, m.message_type, m.schema_version, k) for m, k in server.REPLY_KINDS.items()}
    assert wire.HEADER_VERSION == base.HEADER_VERSION


def plain(value: object) -> object:
    """A message's values, comparable across both sides: every field by name, a Decimal by
    its digits (1.50 is not written as 1.5), a nested structure likewise."""
    if isinstance(value, msgspec.Struct):
        return {f: plain(getattr(value, f)) for f in value.__struct_fields__}
    if isinstance(value, base.BaseModel):
        return {f: plain(getattr(value, f)) for f in type(value).model_fields}
    if isinstance(value, Decimal):
        return ("decimal", str(value))
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return (type(value).__name__, value)


ACCOUNTS = [
    server.PromptAccount(account="personal:bob", path="bob", charge_rate=Decimal(1)),
    server.PromptAccount(
        account="shared:acme",
        path="clients/acme",
        charge_rate=Decimal("1.25"),
        code="C-100",
        available=Decimal("-310.50"),
    ),
]


def prompt(**changes) -> server.JobPrompt:
    fields = {
        "job_id": JOB,
        "kind": "choose_account",
        "document_name": "Thèse – final “v2”.pdf",
        "printer": "lab-1",
        "sides": 12,
        "color_sides": 2,
        "grayscale_sides": 10,
        "copies": 3,
        "duplex": True,
        "cost": Decimal("4.7000"),
        "accounts": ACCOUNTS,
        "allow_pin": True,
        "expires_at": WHEN,
        "messages": ["Did you print 'a.pdf' from pc-7 at 07:30?", "colour costs more"],
    }
    return server.JobPrompt(**(fields | changes))


# Every message the server sends a desktop, with its optional fields given and left out.
SENT = [
    server.PrintedNotice(
        job_id=JOB,
        document_name="a.pdf",
        printer="lab-1",
        sides=3,
        copies=2,
        cost=Decimal("0.30"),
        balance=Decimal("-1.05"),
    ),
    server.DeniedNotice(job_id=JOB, document_name="a.pdf", printer="lab-1", reason="no credit"),
    server.DeniedNotice(
        job_id=JOB, document_name="a.pdf", printer="lab-1", reason="x", text="Ask the desk"
    ),
    server.BalanceNotice(balance=Decimal("12.40"), available=Decimal("0")),
    server.LowBalanceNotice(
        balance=Decimal("0.90"), available=Decimal("0.80"), threshold=Decimal("1.00")
    ),
    server.LowBalanceNotice(
        balance=Decimal("0.90"), available=Decimal("0.80"), threshold=Decimal(1), text="Top up"
    ),
    prompt(),
    prompt(kind="confirm", accounts=[], messages=[], allow_pin=False, duplex=False),
    server.PromptClosed(job_id=JOB, document_name="a.pdf", outcome="cancelled", reason="by admin"),
    server.AnswerResult(job_id=JOB, outcome="refused", reason="wrong PIN"),
    server.AnswerResult(
        job_id=JOB, outcome="authorized", account="shared:acme", amount=Decimal("0.10")
    ),
    server.BroadcastNotice(text="The library closes at 20:00\nToday only", sender="admin"),
    ClientOptionsNotice(revision=7, options={"hide_balance": "true", "title": "Lab \u00e9"}),
    ClientOptionsNotice(revision=0, options={}),
]


def test_each_kind_of_message_the_server_sends_is_tried():
    assert {type(m) for m in SENT} == set(server.DESKTOP_KINDS)


@pytest.mark.parametrize("message", SENT, ids=lambda m: type(m).__name__)
def test_what_the_server_sends_reads_the_same_in_the_client(message):
    body = registry.encode(message)
    read = wire.decode(
        contract.DESKTOP_MESSAGES, message.message_type, message.schema_version, body
    )
    assert type(read).__name__ == type(message).__name__
    assert plain(read) == plain(message)
    # Written again (what the JSON view prints): byte for byte what the server wrote.
    assert wire.to_json(read) == body
    # And read back as the server reads it: the same values again.
    assert plain(
        registry.decode(message.message_type, message.schema_version, wire.to_json(read))
    ) == plain(message)


# Bodies of earlier versions, as a server of that time wrote them: upcast the same way.
OLD = [
    (
        "desktop.job_printed",
        1,
        {
            "job_id": str(JOB),
            "document_name": "a",
            "printer": "p",
            "pages": 3,
            "copies": 1,
            "cost": "0.30",
            "balance": "4.70",
        },
    ),
    (
        "desktop.job_denied",
        1,
        {"job_id": str(JOB), "document_name": "a", "printer": "p", "reason": "r"},
    ),
    ("desktop.low_balance", 1, {"balance": "1", "available": "1", "threshold": "2"}),
    (
        "desktop.job_prompt",
        1,
        {
            "job_id": str(JOB),
            "kind": "confirm",
            "document_name": "a",
            "printer": "p",
            "pages": 2,
            "color_pages": 1,
            "grayscale_pages": 1,
            "copies": 1,
            "duplex": False,
            "cost": "0.20",
            "accounts": [],
            "allow_pin": False,
            "expires_at": WHEN.isoformat(),
        },
    ),
    (
        "desktop.job_prompt",
        2,
        {
            "job_id": str(JOB),
            "kind": "choose_account",
            "document_name": "a",
            "printer": "p",
            "sides": 2,
            "color_sides": 0,
            "grayscale_sides": 2,
            "copies": 1,
            "duplex": False,
            "cost": "0.20",
            "accounts": [{"account": "personal:bob", "path": "bob", "charge_rate": "1"}],
            "allow_pin": False,
            "expires_at": WHEN.isoformat(),
        },
    ),
]


@pytest.mark.parametrize("message_type, version, body", OLD, ids=lambda v: str(v)[:20])
def test_bodies_of_earlier_versions_are_upcast_the_same(message_type, version, body):
    raw = msgspec.json.encode(body)
    assert plain(wire.decode(contract.DESKTOP_MESSAGES, message_type, version, raw)) == plain(
        registry.decode(message_type, version, raw)
    )


def good(**changes) -> dict:
    return msgspec.json.decode(registry.encode(prompt())) | changes


# Bodies (and envelopes) the contract refuses: (type, version, body).
BAD = [
    ("desktop.nonsense", 1, b"{}"),
    (None, 1, b"{}"),
    ("", 1, b"{}"),
    ("desktop.balance", None, b'{"balance": "1", "available": "1"}'),
    ("desktop.balance", 0, b'{"balance": "1", "available": "1"}'),
    ("desktop.balance", 2, b'{"balance": "1", "available": "1"}'),
    ("desktop.balance", 1, b"not json"),
    ("desktop.balance", 1, b'{"balance": "1", "available": "1"'),
    ("desktop.balance", 1, b"\xff\xfe"),
    ("desktop.balance", 1, b'["balance", "available"]'),
    ("desktop.balance", 1, b'"balance"'),
    ("desktop.balance", 1, b'{"balance": "1"}'),
    ("desktop.balance", 1, b'{"balance": "1", "available": "1", "extra": 1}'),
    ("desktop.balance", 1, b'{"balance": 1.5, "available": "1"}'),
    ("desktop.balance", 1, b'{"balance": true, "available": "1"}'),
    ("desktop.balance", 1, b'{"balance": "NaN", "available": "1"}'),
    ("desktop.balance", 1, b'{"balance": "-Infinity", "available": "1"}'),
    ("desktop.balance", 1, b'{"balance": "lots", "available": "1"}'),
    ("desktop.balance", 1, b'{"balance": null, "available": "1"}'),
    ("desktop.balance", 1, b'{"balance": ["1"], "available": "1"}'),
    ("desktop.job_prompt", 3, msgspec.json.encode(good(job_id="not-a-uuid"))),
    ("desktop.job_prompt", 3, msgspec.json.encode(good(kind="pay_anything"))),
    ("desktop.job_prompt", 3, msgspec.json.encode(good(sides="many"))),
    ("desktop.job_prompt", 3, msgspec.json.encode(good(duplex="perhaps"))),
    ("desktop.job_prompt", 3, msgspec.json.encode(good(cost=0.1))),
    ("desktop.job_prompt", 3, msgspec.json.encode(good(expires_at="soon"))),
    ("desktop.job_prompt", 3, msgspec.json.encode(good(messages="one"))),
    ("desktop.job_prompt", 3, msgspec.json.encode(good(accounts=[{"account": "x"}]))),
    (
        "desktop.job_prompt",
        3,
        msgspec.json.encode(
            good(accounts=[{"account": "x", "path": "x", "charge_rate": "1", "owner": "mallory"}])
        ),
    ),
    (
        "desktop.job_prompt",
        3,
        msgspec.json.encode(
            good(accounts=[{"account": "x", "path": "x", "charge_rate": "1", "available": 2.5}])
        ),
    ),
    (
        "desktop.job_prompt",
        1,
        msgspec.json.encode({k: v for k, v in good().items() if k != "sides"}),
    ),
    ("desktop.client_options", 1, b'{"revision": 1, "options": {"title": 5}}'),
    ("desktop.answer_result", 1, msgspec.json.encode({"job_id": str(JOB), "outcome": "maybe"})),
]


@pytest.mark.parametrize("message_type, version, body", BAD, ids=lambda v: str(v)[:30])
def test_what_one_side_refuses_the_other_refuses_too(message_type, version, body):
    with pytest.raises(registry.ContractError) as on_the_server:
        registry.decode(message_type, version, body)
    with pytest.raises(wire.ContractError) as in_the_client:
        wire.decode(contract.DESKTOP_MESSAGES, message_type, version, body)
    # The same kind of refusal (unknown type, version, malformed), for the same field.
    assert type(in_the_client.value).__name__ == type(on_the_server.value).__name__
    said = str(on_the_server.value)
    if isinstance(on_the_server.value, registry.MalformedMessage) and "JSON" not in said:
        kind, where = str(in_the_client.value).split(": ")[:2]
        # (Of a value in a dictionary, msgspec names the dictionary, not the key.)
        assert kind == said.split(": ")[0]
        assert said.split(": ")[1].startswith(where.removesuffix("[...]"))
    else:
        assert str(in_the_client.value).split(": ")[0] == said.split(": ")[0]


# Forms pydantic's lax mode takes but the server's codec never writes (a number as a
# string, a whole float for an int, "yes" for true): the client is never laxer than the
# server, so it refuses them.
LAX = [
    ("desktop.client_options", 1, b'{"revision": "1", "options": {}}'),
    ("desktop.job_prompt", 3, msgspec.json.encode(good(sides=12.0))),
    ("desktop.job_prompt", 3, msgspec.json.encode(good(duplex="yes"))),
]


@pytest.mark.parametrize("message_type, version, body", LAX, ids=lambda v: str(v)[:30])
def test_forms_the_server_never_writes_are_refused_by_the_client(message_type, version, body):
    registry.decode(message_type, version, body)
    with pytest.raises(wire.MalformedMessage):
        wire.decode(contract.DESKTOP_MESSAGES, message_type, version, body)


def test_a_message_that_is_not_the_desktops_is_not_read_at_all():
    # The old client read any type the contract knows: a command in the user's queue (a
    # misrouted or forged one) was shown. Now only the desktop's messages are read.
    body = b'{"text": "pay here", "users": [], "sender": "admin"}'
    assert registry.decode("notification.broadcast", 1, body).text == "pay here"
    with pytest.raises(wire.UnknownMessageType, match=r"'notification\.broadcast'"):
        wire.decode(contract.DESKTOP_MESSAGES, "notification.broadcast", 1, body)


def test_a_refusal_names_the_field():
    with pytest.raises(wire.MalformedMessage, match=r"^desktop.balance: balance: .*float"):
        wire.decode(
            contract.DESKTOP_MESSAGES, "desktop.balance", 1, b'{"balance": 0.1, "available": "1"}'
        )
    body = msgspec.json.encode(good(accounts=[{"account": "x", "path": "x", "charge_rate": "z"}]))
    with pytest.raises(
        wire.MalformedMessage, match=r"^desktop.job_prompt: accounts.0.charge_rate: "
    ):
        wire.decode(contract.DESKTOP_MESSAGES, "desktop.job_prompt", 3, body)


def client_with_prompts() -> ClientModel:
    model = ClientModel("bob")
    now = datetime.now(UTC)
    for job, kind in ((uuid.uuid4(), "choose_account"), (uuid.uuid4(), "confirm")):
        sent = prompt(job_id=job, kind=kind, expires_at=now + timedelta(minutes=5), messages=[])
        model.receive(
            wire.decode(contract.DESKTOP_MESSAGES, sent.message_type, 3, registry.encode(sent))
        )
    return model


CHOICES = [
    Choice("print", account="shared:acme"),
    Choice("print", account="C-100"),  # by its code
    Choice("print", account="shared:acme", pin="1234", comment="für das Projekt ✓"),
    Choice("print", account="x" * 200, comment="c" * 500, pin="p" * 64),
    Choice("cancel"),
    Choice("print"),
]


@pytest.mark.parametrize("choice", CHOICES, ids=repr)
def test_every_reply_the_client_sends_is_valid_in_the_pydantic_model(choice):
    model = client_with_prompts()
    replies = model.answer(next(iter(model.prompts)), choice, apply_to_all=True)
    assert len(replies) == 2
    for reply in [*replies, contract.ClientHello(user="bob")]:
        body = wire.encode(reply)
        read = registry.decode(reply.message_type, reply.schema_version, body)
        assert type(read).__name__ == type(reply).__name__
        assert plain(read) == plain(reply)


# Replies the server refuses; the client refuses to write them (before the prompt is
# taken as answered), for the same field.
BAD_REPLIES = [
    {"pin": ""},
    {"pin": "p" * 65},
    {"comment": "c" * 501},
    {"account": "a" * 201},
    {"action": "pay"},
    {"user": "bob*"},
    {"user": "platen-admin"},
    {"user": "guest"},
    {"user": "x" * 65},
    {"user": "bob\n"},  # Python's `$` would let a final newline through
]


@pytest.mark.parametrize("change", BAD_REPLIES, ids=repr)
def test_a_reply_the_server_would_refuse_the_client_does_not_send(change):
    fields = {"job_id": JOB, "user": "bob", "action": "print"} | change
    with pytest.raises(registry.ContractError) as on_the_server:
        registry.decode("desktop.job_answer", 1, msgspec.json.encode(fields))
    with pytest.raises(wire.ContractError) as in_the_client:
        wire.encode(contract.JobAnswer(**fields))
    field = next(iter(change))
    assert str(on_the_server.value).startswith(f"desktop.job_answer: {field}")
    assert str(in_the_client.value).startswith(f"desktop.job_answer: {field}")


def test_a_pin_too_long_leaves_the_prompt_waiting():
    model = client_with_prompts()
    job = next(iter(model.prompts))
    with pytest.raises(wire.ContractError):
        model.answer(job, Choice("print", account="shared:acme", pin="p" * 65))
    assert job in model.prompts and not model.answered
    assert ClientHello(user="bob").user == contract.ClientHello(user="bob").user
