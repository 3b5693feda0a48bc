"""The event contract: money, logins, decoding, versions and upcasting.

Pure logic: no broker, no database.
"""

import base64
import json
import re
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import ClassVar

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from platen.events import registry
from platen.events.accounts import AddUser, JobCharged, ShowUser, UserAdded
from platen.events.base import (
    KINDS,
    LOGIN_PATTERN,
    Command,
    DesktopMessage,
    DesktopReply,
    Event,
    Message,
    Query,
    Reply,
    canonical_login,
    is_valid_login,
    upcasts,
)
from platen.events.desktop import BalanceNotice
from platen.events.jobs import JobCaptured, JobPriced, ListJobs, SubmitJob
from platen.events.money import Money
from platen.events.printers import AddPrinter
from platen.events.registry import (
    ContractError,
    MalformedMessage,
    UnknownMessageType,
    UnsupportedVersion,
    decode,
    encode,
    register,
)
from platen.events.routing import desktop_key, login_of_key
from platen.events.system import Ping

JOB_ID = uuid.UUID("12345678-1234-5678-1234-567812345678")


def balance(amount: object) -> BalanceNotice:
    return BalanceNotice(balance=amount, available="0")


# --------------------------------------------------------------------------- money


@pytest.mark.parametrize("value", [0.3, 0.0, 1.0, -2.5, float("nan"), float("inf")])
def test_money_refuses_a_float(value):
    with pytest.raises(ValidationError, match="not a float"):
        balance(value)


def test_money_refuses_a_json_number_with_a_fraction():
    body = b'{"balance": 0.30, "available": "0"}'
    with pytest.raises(MalformedMessage, match="balance"):
        decode("desktop.balance", 1, body)


def test_money_accepts_a_json_integer_number():
    msg = decode("desktop.balance", 1, b'{"balance": 5, "available": "0"}')
    assert msg.balance == Decimal(5)
    assert isinstance(msg.balance, Decimal)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0.30", Decimal("0.30")),
        ("-1.25", Decimal("-1.25")),
        ("12", Decimal("12")),
        (7, Decimal("7")),
        (0, Decimal("0")),
        (-3, Decimal("-3")),
        (Decimal("0.035"), Decimal("0.035")),
        (Decimal("1E+3"), Decimal("1000")),
    ],
)
def test_money_accepts_str_int_and_decimal(value, expected):
    amount = balance(value).balance
    assert isinstance(amount, Decimal)
    assert amount == expected


def test_money_keeps_the_exponent_of_a_string_amount():
    # "0.30" must stay 0.30 (two places), not become 0.3.
    amount = balance("0.30").balance
    assert amount.as_tuple() == Decimal("0.30").as_tuple()
    assert str(amount) == "0.30"


@pytest.mark.parametrize(
    "value",
    [
        "NaN",
        "nan",
        "sNaN",
        "Infinity",
        "-Infinity",
        "inf",
        Decimal("NaN"),
        Decimal("Infinity"),
        Decimal("-Infinity"),
    ],
)
def test_money_refuses_nan_and_infinity(value):
    with pytest.raises(ValidationError, match="finite"):
        balance(value)


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity"])
def test_decode_refuses_non_finite_money(text):
    body = json.dumps({"balance": text, "available": "0"}).encode()
    with pytest.raises(MalformedMessage, match="finite"):
        decode("desktop.balance", 1, body)


def test_money_serialises_to_a_json_string():
    data = json.loads(encode(BalanceNotice(balance="0.30", available=Decimal("-1.05"))))
    assert data == {"balance": "0.30", "available": "-1.05"}


def test_money_stays_decimal_in_a_python_dump():
    dumped = BalanceNotice(balance="0.30", available=2).model_dump()
    assert dumped == {"balance": Decimal("0.30"), "available": Decimal(2)}
    assert isinstance(dumped["balance"], Decimal)


def test_money_constraints_still_apply_after_conversion():
    with pytest.raises(ValidationError, match="greater than or equal to 0"):
        AddPrinter(name="lab-1", price_per_page="-0.01")
    with pytest.raises(ValidationError, match="less than or equal to 10000"):
        AddPrinter(name="lab-1", price_per_page="10000.01")
    assert AddPrinter(name="lab-1", price_per_page="10000").price_per_page == Decimal(10000)


finite_decimals = st.decimals(allow_nan=False, allow_infinity=False)


@given(amount=finite_decimals)
def test_money_round_trips_exactly(amount):
    original = balance(amount)
    decoded = decode("desktop.balance", 1, encode(original))
    assert decoded == original
    # Equal is not enough (0.3 == 0.30): the digits and the exponent must survive.
    assert decoded.balance.as_tuple() == amount.as_tuple()
    assert str(decoded.balance) == str(amount)


@given(amount=finite_decimals)
def test_money_json_is_always_a_string_parsing_back_to_the_same_amount(amount):
    data = json.loads(encode(balance(amount)))
    assert isinstance(data["balance"], str)
    assert Decimal(data["balance"]) == amount


# --------------------------------------------------------------------------- logins


@pytest.mark.parametrize("login", ["alice", "first.last", "a.b.c", "ann@example", "j-doe"])
def test_a_login_is_one_word_of_its_desktop_keys_and_reads_back(login):
    key = desktop_key(login, "answer")
    assert key.count(".") == 2 and key.startswith("user.") and key.endswith(".answer")
    assert login_of_key(key) == login


def test_no_login_can_pass_for_another_in_a_routing_key():
    # `first`'s permission (`^user\.first\.[^.]+$`) never covers `first.last`'s keys, and a
    # key that writes a dot any other way than login_word does names no login.
    assert desktop_key("first.last", "answer") == "user.first%2Elast.answer"
    assert login_of_key("user.first.last.answer") is None
    for key in ("user.first%2elast.answer", "user.first%25last.answer", "user.a%.answer"):
        assert login_of_key(key) is None
    assert login_of_key("user.alice") is None and login_of_key("desktop.alice.x") is None


VALID_LOGINS = [
    "a",
    "alice",
    "Bob_2",
    "_svc",
    "9lives",
    "ann@example",
    "j-doe",
    "a" * 64,
    "first.last",  # routing keys carry it as one word (routing.login_word)
    "j.r.r.tolkien",
    "replatten-fan",  # "platen-" only after a separator or at the start is kept
    "guestlecturer",
]
RESERVED_LOGINS = [
    "guest",  # the broker's own
    "GUEST",
    "platen-admin",
    "platen-job-capture",
    "Platen-Ledger",
    "platen-print-server",
    "platen-print-server.lab1",
    "site1-platen-admin",  # an installation's prefix before it
    "x.platen-notification",
]
INVALID_LOGINS = [
    *RESERVED_LOGINS,
    ".ab",  # must start with a letter, digit or underscore
    "a%2Eb",  # % is the routing keys' escape
    "a*",  # topic wildcard
    "a#",  # topic wildcard
    "",
    "a" * 65,
    "-ann",  # must start with a letter, digit or underscore
    "@ann",
    "a b",
    "a/b",
    "a\n",
    "\nann",
    "é",
]


@pytest.mark.parametrize("login", VALID_LOGINS)
def test_valid_logins(login):
    assert is_valid_login(login)
    assert ShowUser(login=login).login == login.lower()


@pytest.mark.parametrize("login", INVALID_LOGINS)
def test_invalid_logins(login):
    assert not is_valid_login(login)


@pytest.mark.parametrize("login", INVALID_LOGINS)
@pytest.mark.parametrize(
    "build",
    [
        lambda login: ShowUser(login=login),
        lambda login: AddUser(login=login),
        lambda login: UserAdded(login=login),
        lambda login: ListJobs(user=login),
        lambda login: JobPriced(
            job_id=JOB_ID,
            user=login,
            printer="lab-1",
            document_name="a.pdf",
            pages=1,
            copies=1,
            cost="0.10",
        ),
    ],
    ids=["ShowUser", "AddUser", "UserAdded", "ListJobs", "JobPriced"],
)
def test_models_with_login_fields_refuse_invalid_logins(build, login):
    with pytest.raises(ValidationError):
        build(login)


@pytest.mark.parametrize("login", ["platen-admin", "guest", "a*", "a#", "", "a" * 65])
def test_decode_refuses_invalid_login(login):
    body = json.dumps({"login": login}).encode()
    with pytest.raises(MalformedMessage, match="login"):
        decode("ledger.user.show", 1, body)


@given(text=st.text(max_size=70) | st.from_regex(LOGIN_PATTERN, fullmatch=True))
def test_is_valid_login_agrees_with_the_model_validation(text):
    # is_valid_login (Python re) and the Login type (pydantic's regex engine) must agree,
    # or a login would pass one check and fail the other.
    try:
        ShowUser(login=text)
        accepted = True
    except ValidationError:
        accepted = False
    assert is_valid_login(text) == accepted


# --------------------------------------------------------------------------- decode


def test_contract_errors_are_one_family():
    for exc in (UnknownMessageType, UnsupportedVersion, MalformedMessage):
        assert issubclass(exc, ContractError)
    assert issubclass(ContractError, ValueError)


def test_decode_unknown_type():
    with pytest.raises(UnknownMessageType, match=re.escape("no.such.type")):
        decode("no.such.type", 1, b"{}")


@pytest.mark.parametrize("message_type", [None, ""])
def test_decode_missing_type(message_type):
    with pytest.raises(UnknownMessageType, match="no type"):
        decode(message_type, 1, b"{}")


@pytest.mark.parametrize("version", [None, 0, -1, 2, 99])
def test_decode_unsupported_versions(version):
    # Every real message is at version 1 today.
    assert ShowUser.schema_version == 1
    with pytest.raises(UnsupportedVersion, match=re.escape("ledger.user.show:")):
        decode("ledger.user.show", version, b'{"login": "alice"}')


def test_decode_version_checked_before_body():
    # A version this consumer does not know is reported as such even if the body is junk.
    with pytest.raises(UnsupportedVersion):
        decode("ledger.user.show", 2, b"not json")


@pytest.mark.parametrize(
    "body",
    [b"not json", b"", b"{", b"\xff\xfe\x00", b"{'login': 'alice'}"],
    ids=["text", "empty", "truncated", "not-utf8", "single-quotes"],
)
def test_decode_non_json_body(body):
    with pytest.raises(MalformedMessage, match="not JSON"):
        decode("ledger.user.show", 1, body)


@pytest.mark.parametrize("body", [b"[]", b'["alice"]', b'"alice"', b"null", b"42"])
def test_decode_json_that_is_not_an_object(body):
    with pytest.raises(MalformedMessage, match="not a JSON object"):
        decode("ledger.user.show", 1, body)


def test_decode_missing_field():
    with pytest.raises(MalformedMessage, match="login"):
        decode("ledger.user.show", 1, b"{}")


def test_decode_extra_field_is_refused():
    with pytest.raises(MalformedMessage, match="admin"):
        decode("ledger.user.show", 1, b'{"login": "alice", "admin": true}')


def test_decode_extra_field_on_message_without_fields():
    assert decode("service.ping", 1, b"{}") == Ping()
    with pytest.raises(MalformedMessage, match="x: Extra inputs"):
        decode("service.ping", 1, b'{"x": 1}')


def test_decode_wrong_field_type():
    body = json.dumps(
        {
            "job_id": str(JOB_ID),
            "user": "alice",
            "printer": "lab-1",
            "document_name": "a.pdf",
            "sides": "three",
            "copies": 1,
            "cost": "0.30",
        }
    ).encode()
    with pytest.raises(MalformedMessage, match="sides"):
        decode("job.priced", JobPriced.schema_version, body)


def test_decode_returns_the_registered_model():
    msg = decode("ledger.user.show", 1, b'{"login": "alice"}')
    assert type(msg) is ShowUser
    assert msg.login == "alice"


def test_full_message_round_trips():
    original = JobCharged(
        job_id=JOB_ID,
        user="alice",
        account="personal:alice",
        printer="lab-1",
        document_name="report.pdf",
        sides=3,
        copies=2,
        amount="0.60",
        balance="4.40",
    )
    data = json.loads(encode(original))
    assert data["job_id"] == "12345678-1234-5678-1234-567812345678"
    assert data["amount"] == "0.60"
    assert decode("job.charged", JobCharged.schema_version, encode(original)) == original


def test_datetime_round_trips():
    at = datetime(2024, 5, 17, 9, 30, 15, 123456, tzinfo=UTC)
    original = JobCaptured(
        job_id=JOB_ID,
        user="alice",
        printer="lab-1",
        document_name="a.pdf",
        pages=1,
        copies=1,
        size_bytes=0,
        captured_at=at,
    )
    decoded = decode("job.captured", JobCaptured.schema_version, encode(original))
    assert decoded.captured_at == at
    assert decoded == original


def test_job_captured_version_1_is_upcast_to_one_grayscale_side_per_page():
    v1 = (
        b'{"job_id": "%s", "user": "alice", "printer": "lab-1", "document_name": "a.pdf", '
        b'"pages": 3, "copies": 2, "size_bytes": 10, "captured_at": "2024-05-17T09:30:00Z"}'
        % str(JOB_ID).encode()
    )
    event = decode("job.captured", 1, v1)
    assert JobCaptured.schema_version == 4
    assert (event.sides, event.sheets, event.total_sides, event.color_pages) == (3, 3, 6, [])
    assert [(g.paper, g.color, g.count) for g in event.side_groups] == [("unknown", False, 3)]


def test_job_captured_version_2_reads_as_version_3_and_3_takes_raster_formats():
    v2 = JobCaptured(
        job_id=JOB_ID,
        user="alice",
        printer="lab-1",
        document_name="a.pdf",
        pages=2,
        copies=1,
        size_bytes=10,
        captured_at=datetime(2024, 5, 17, 9, 30, tzinfo=UTC),
        format="postscript",
        color_pages=[2],
    )
    assert decode("job.captured", 2, encode(v2)) == v2
    for fmt in ("pwg-raster", "urf"):
        assert JobCaptured.model_validate({**v2.model_dump(), "format": fmt}).format == fmt
    body = encode(v2).replace(b'"postscript"', b'"docx"')
    with pytest.raises(ContractError):
        decode("job.captured", 3, body)


def test_job_captured_version_3_is_upcast_to_an_unverified_job():
    # Before version 4 nothing proved who sent a job: the user must be asked.
    v3 = (
        b'{"job_id": "%s", "user": "alice", "printer": "lab-1", "document_name": "a.pdf", '
        b'"pages": 1, "copies": 1, "size_bytes": 10, "captured_at": "2024-05-17T09:30:00Z"}'
        % str(JOB_ID).encode()
    )
    event = decode("job.captured", 3, v3)
    assert (event.identity, event.origin_host) == ("unverified", None)
    with pytest.raises(ContractError):
        decode("job.captured", 4, v3.replace(b'"copies"', b'"identity": "root", "copies"'))


def test_submit_job_version_1_is_upcast_to_an_api_job():
    v1 = (
        b'{"job_id": "%s", "user": "alice", "printer": "lab-1", "document_name": "a.pdf", '
        b'"document": "JVBERi0=", "copies": 1}' % str(JOB_ID).encode()
    )
    cmd = decode("capture.submit", 1, v1)
    assert (cmd.source, cmd.duplex, cmd.number_up) == ("api", False, 1)


def test_job_priced_version_1_is_upcast_to_grayscale_pages_and_no_policy():
    v1 = (
        b'{"job_id": "%s", "user": "alice", "printer": "lab-1", "document_name": "a.pdf", '
        b'"pages": 3, "copies": 2, "cost": "0.60"}' % str(JOB_ID).encode()
    )
    event = decode("job.priced", 1, v1)
    assert (event.sides, event.color_sides, event.grayscale_sides) == (3, 0, 3)
    assert event.schedule_version == 0
    assert (event.confirm, event.messages, event.breakdown) == (False, [], [])
    assert event.cost == Decimal("0.60")


def test_job_input_required_version_1_is_upcast_with_no_messages():
    v1 = (
        b'{"job_id": "%s", "user": "alice", "printer": "lab-1", "document_name": "a.pdf", '
        b'"pages": 3, "copies": 1, "cost": "0.30", "kind": "confirm", "accounts": [], '
        b'"allow_pin": false, "expires_at": "2026-05-17T09:30:00Z"}' % str(JOB_ID).encode()
    )
    event = decode("job.input_required", 1, v1)
    assert (event.sides, event.grayscale_sides, event.color_sides, event.messages) == (3, 3, 0, [])


@pytest.mark.parametrize(
    ("message_type", "version", "extra"),
    [
        ("job.priced", 2, {"color_pages": 1, "grayscale_pages": 2}),
        ("job.input_required", 2, {"color_pages": 1, "grayscale_pages": 2}),
        ("job.charged", 1, {}),
        ("desktop.job_prompt", 1, {"color_pages": 1, "grayscale_pages": 2}),
        ("desktop.job_printed", 1, {}),
        ("pricing.quote.reply", 1, {"color_pages": 1, "grayscale_pages": 2}),
    ],
)
def test_a_message_that_said_pages_for_printed_sides_now_says_sides(message_type, version, extra):
    """`pages` counts a document's pages (job.captured, job.printed); printed sides are
    `sides`. A body from before the rename reads with the same counts under the new names."""
    model = registry.model_for(message_type)
    current = {
        name: info.annotation
        for name, info in model.model_fields.items()
        if name.endswith("pages") or name.endswith("sides")
    }
    assert "pages" not in current and "sides" in current
    renamed = model.upcasters[version]({"pages": 3, "copies": 1, "kind": "confirm", **extra})
    assert renamed["sides"] == 3 and "pages" not in renamed
    if extra:
        assert (renamed["color_sides"], renamed["grayscale_sides"]) == (1, 2)
        assert "color_pages" not in renamed and "grayscale_pages" not in renamed


def test_messages_are_frozen():
    msg = ShowUser(login="alice")
    with pytest.raises(ValidationError):
        msg.login = "mallory"


def test_every_registered_type_is_keyed_by_its_own_message_type():
    types = registry.known_types()
    for name in ("capture.submit", "job.priced", "ledger.user.show", "desktop.balance"):
        assert name in types
    for name, model in types.items():
        assert model.message_type == name
        assert model.schema_version >= 1


# --------------------------------------------------------------------------- upcasters


@pytest.fixture
def isolated_registry(monkeypatch):
    """Types registered by a test disappear after it."""
    monkeypatch.setattr(registry, "_models", dict(registry._models))


def fresh_type() -> str:
    return f"test.upcast.{uuid.uuid4()}"


def test_v1_body_is_upcast_step_by_step_to_v3(isolated_registry):
    mt = fresh_type()

    # Version history: v1 {name, cents}; v2 {full_name, cents}; v3 {full_name, amount}.
    calls = []

    @register
    class Charge(Event):
        message_type: ClassVar[str] = mt
        schema_version: ClassVar[int] = 3
        full_name: str
        amount: Money

        @upcasts(1)
        def one_to_two(data):
            calls.append(1)
            return {"full_name": data["name"], "cents": data["cents"]}

        @upcasts(2)
        def two_to_three(data):
            calls.append(2)
            return {"full_name": data["full_name"], "amount": str(Decimal(data["cents"]) / 100)}

    v1 = json.dumps({"name": "Ada", "cents": 1234}).encode()
    msg = decode(mt, 1, v1)
    assert type(msg) is Charge
    assert msg == Charge(full_name="Ada", amount="12.34")
    assert calls == [1, 2]

    calls.clear()
    v2 = json.dumps({"full_name": "Ada", "cents": 5}).encode()
    assert decode(mt, 2, v2) == Charge(full_name="Ada", amount="0.05")
    assert calls == [2]

    calls.clear()
    v3 = json.dumps({"full_name": "Ada", "amount": "1.00"}).encode()
    assert decode(mt, 3, v3) == Charge(full_name="Ada", amount="1.00")
    assert calls == []

    with pytest.raises(UnsupportedVersion, match="knows up to 3"):
        decode(mt, 4, v3)


def test_v1_body_without_upcasters_is_not_validated_as_v3(isolated_registry):
    # A v1 body that happens to fit v3 must still go through the upcasters.
    mt = fresh_type()

    @register
    class Note(Event):
        message_type: ClassVar[str] = mt
        schema_version: ClassVar[int] = 3
        text: str

    with pytest.raises(UnsupportedVersion, match="no upcaster from version 1"):
        decode(mt, 1, b'{"text": "hi"}')


def test_missing_upcaster_step(isolated_registry):
    mt = fresh_type()

    @register
    class Note(Event):
        message_type: ClassVar[str] = mt
        schema_version: ClassVar[int] = 3
        text: str

        @upcasts(2)
        def two_to_three(data):
            return {"text": data["body"]}

    # 2 -> 3 exists, 1 -> 2 does not.
    assert decode(mt, 2, b'{"body": "hi"}') == Note(text="hi")
    with pytest.raises(UnsupportedVersion, match="no upcaster from version 1"):
        decode(mt, 1, b'{"body": "hi"}')


def test_upcast_result_is_still_validated(isolated_registry):
    mt = fresh_type()

    @register
    class Note(Event):
        message_type: ClassVar[str] = mt
        schema_version: ClassVar[int] = 2
        text: str

        @upcasts(1)
        def one_to_two(data):
            return {"text": data["body"], "leftover": True}

    with pytest.raises(MalformedMessage, match="leftover"):
        decode(mt, 1, b'{"body": "hi"}')


def test_a_message_without_a_kind_cannot_be_registered(isolated_registry):
    class Vague(Message):
        message_type: ClassVar[str] = fresh_type()

    with pytest.raises(TypeError, match="must subclass one of the kinds"):
        register(Vague)


def test_two_upcasters_from_one_version_are_refused():
    with pytest.raises(TypeError, match="two upcasters from v1"):

        class Twice(Event):
            message_type: ClassVar[str] = fresh_type()
            schema_version: ClassVar[int] = 2

            @upcasts(1)
            def a(body):
                return body

            @upcasts(1)
            def b(body):
                return body


def test_every_registered_message_can_be_read_from_every_version():
    """Each message that has changed has an upcaster from each older version."""
    for name, model in registry.known_types().items():
        missing = set(range(1, model.schema_version)) - set(model.upcasters)
        assert not missing, f"{name} has no upcaster from version(s) {sorted(missing)}"
        assert max(model.upcasters, default=0) < model.schema_version, name


def test_every_registered_message_says_what_kind_it_is():
    for name, model in registry.known_types().items():
        kinds = [k for k in KINDS if issubclass(model, k)]
        assert len(kinds) == 1, name
        assert model.message_kind == kinds[0].message_kind


def test_the_kind_follows_the_address():
    """Requests are addressed under the prefix of a service (or `service.` for those every
    service answers); events under their aggregate; desktop messages under `desktop.`.
    A reply has no address of its own (it goes to its request's `reply_to`): its name is
    free, and nothing reads its kind from it."""
    for name, model in registry.known_types().items():
        if issubclass(model, Reply):
            continue
        if issubclass(model, Command | Query):
            assert name.split(".")[0] in ("capture", "pricing", "ledger", "notification", "service")
        elif issubclass(model, DesktopMessage | DesktopReply):
            assert name.startswith("desktop.") and model.desktop_kind, name
        else:
            assert issubclass(model, Event)
            assert name.split(".")[0] in ("job", "user", "account"), name


def test_registering_two_classes_under_one_type_fails(isolated_registry):
    mt = fresh_type()

    class First(Event):
        message_type: ClassVar[str] = mt

    class Second(Event):
        message_type: ClassVar[str] = mt

    assert register(First) is First
    assert register(First) is First  # the same class again is harmless
    with pytest.raises(RuntimeError, match="registered twice"):
        register(Second)
    assert registry.model_for(mt) is First


def test_a_real_type_cannot_be_hijacked(isolated_registry):
    class Impostor(Event):
        message_type: ClassVar[str] = "job.priced"

    with pytest.raises(RuntimeError):
        register(Impostor)
    assert registry.model_for("job.priced") is JobPriced


# --------------------------------------------------------------------------- SubmitJob


def submit(**overrides) -> SubmitJob:
    fields = {
        "job_id": JOB_ID,
        "user": "alice",
        "printer": "lab-1",
        "document_name": "report.pdf",
        "document": base64.b64encode(b"%PDF-1.7 raw\x00\xff bytes").decode(),
    }
    fields.update(overrides)
    return SubmitJob(**fields)


def test_submit_document_is_bytes_in_python_and_base64_in_json():
    raw = bytes(range(256))
    msg = submit(document=base64.b64encode(raw).decode())
    assert msg.document == raw
    assert isinstance(msg.document, bytes)

    data = json.loads(encode(msg))
    assert data["document"] == base64.b64encode(raw).decode()
    assert base64.b64decode(data["document"]) == raw

    decoded = decode("capture.submit", msg.schema_version, encode(msg))
    assert decoded.document == raw
    assert decoded == msg


def test_submit_document_must_be_base64():
    with pytest.raises(ValidationError, match="document"):
        submit(document="not base64!!")


def test_submit_copies_default_to_one():
    assert submit().copies == 1


@pytest.mark.parametrize("copies", [1, 2, 999])
def test_submit_copies_accepted(copies):
    assert submit(copies=copies).copies == copies


@pytest.mark.parametrize("copies", [0, -1, 1000])
def test_submit_copies_out_of_bounds(copies):
    with pytest.raises(ValidationError, match="copies"):
        submit(copies=copies)


@pytest.mark.parametrize(
    ("field", "value"),
    [("printer", "lab 1"), ("printer", ""), ("document_name", ""), ("document_name", "x" * 201)],
)
def test_submit_refuses_bad_printer_and_document_names(field, value):
    with pytest.raises(ValidationError, match=field):
        submit(**{field: value})


@pytest.mark.parametrize("amount", ["abc", "", "1,50"])
def test_non_numeric_money_is_a_malformed_message(amount):
    body = b'{"name": "lab-1", "price_per_page": "' + amount.encode() + b'"}'
    with pytest.raises(MalformedMessage):
        decode("pricing.printer.add", 1, body)


def test_json_true_is_not_money():
    with pytest.raises(MalformedMessage):
        decode("desktop.balance", 1, b'{"balance": true, "available": "0"}')


def test_a_broken_old_version_is_malformed_not_a_crash():
    # The v1 -> v2 upcaster of job.captured needs "pages"; without it the body is
    # malformed (dead-lettered at once), not an error that would be retried.
    with pytest.raises(MalformedMessage, match="cannot be upcast"):
        decode("job.captured", 1, b'{"job_id": "nope"}')


def test_a_version_1_statement_reply_reads_as_not_truncated():
    from platen.events.accounts import StatementView

    body = b'{"account": "personal:a", "opening_balance": "0", "closing_balance": "1", "lines": []}'
    view = decode("ledger.statement.reply", 1, body)
    assert isinstance(view, StatementView) and view.truncated is False
    assert view.closing_balance == Decimal("1")


def test_every_job_event_names_its_job_with_the_same_fields_and_types():
    from platen.events.base import JobEvent

    shared = JobEvent.model_fields
    for name, model in registry.known_types().items():
        if not (issubclass(model, Event) and "job_id" in model.model_fields):
            continue
        for field, info in model.model_fields.items():
            if field in shared:
                assert info.annotation == shared[field].annotation, (name, field)
                assert info.metadata == shared[field].metadata, (name, field)


@pytest.mark.parametrize(
    ("name", "domains", "login"),
    [
        ("alice", (), "alice"),
        ("Alice", (), "alice"),  # logins match without regard to case
        ("First.Last", (), "first.last"),
        ("CORP\\Alice", ("corp",), "alice"),
        ("corp\\alice", ("CORP",), "alice"),
        ("CORP\\alice", ("*",), "alice"),
        ("CORP\\alice", (), None),  # an unlisted domain: no login holds a backslash
        ("OTHER\\alice", ("CORP",), None),
        ("alice@CORP.EXAMPLE.ORG", ("corp.example.org",), "alice"),
        ("ann@example", (), "ann@example"),  # an unlisted realm stays part of the login
        ("ann@example", ("corp",), "ann@example"),
        ("CORP\\platen-admin", ("CORP",), None),  # reserved however it is spelled
        ("Guest", (), None),
        ("CORP\\", ("CORP",), None),
        ("bad*name", (), None),
    ],
)
def test_a_user_name_maps_to_its_login_by_the_sites_domains(name, domains, login):
    assert canonical_login(name, domains) == login


def test_every_message_keeps_logins_in_lower_case():
    assert ShowUser(login="First.Last").login == "first.last"
    assert UserAdded(login="ALICE").login == "alice"


def test_account_options_before_codes_read_with_no_code_and_no_balance_shown():
    """job.input_required v3 and desktop.job_prompt v2 had no `code` nor `available`; the
    ledger's account commands and view v1 no `code` nor `balance_visible`."""
    option = b'{"account": "shared:acme", "path": "acme", "charge_rate": "1"}'
    common = (
        b'"job_id": "%s", "kind": "choose_account", "document_name": "a.pdf", '
        b'"printer": "lab-1", "sides": 1, "copies": 1, "cost": "0.10", "accounts": [%s], '
        b'"allow_pin": false, "expires_at": "2024-05-17T09:40:00Z"'
    ) % (str(JOB_ID).encode(), option)
    asked = decode("job.input_required", 3, b'{"user": "alice", %s}' % common)
    prompt = decode(
        "desktop.job_prompt",
        2,
        b'{%s, "color_sides": 0, "grayscale_sides": 1, "duplex": false}' % common,
    )
    for message in (asked, prompt):
        [a] = message.accounts
        assert (a.account, a.code, a.available) == ("shared:acme", None, None)
    add = decode("ledger.account.add", 1, b'{"name": "acme"}')
    assert (add.code, add.balance_visible) == (None, False)
    change = decode("ledger.account.set", 1, b'{"account": "acme"}')
    assert (change.code, change.clear_code, change.balance_visible) == (None, False, None)
