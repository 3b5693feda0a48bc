"""The desktop's side of the wire contract, without pydantic: its message base classes,
its money and login types, and how a body is read (checked, upcast) and written.

The message classes themselves are generated from the pydantic models, which stay the
contract (`platen.client.contract`, written by apps/client/generate_contract.py): the
pydantic models cost the client about a third of its start-up (bench/README.md,
client_footprint.py), msgspec reads the same bodies with the same checks in a few
milliseconds. apps/client/tests/test_contract.py proves the two agree.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, ClassVar

import msgspec

from platen.events.errors import (  # noqa: F401 (re-exported: the client catches ContractError)
    ContractError,
    MalformedMessage,
    UnknownMessageType,
    UnsupportedVersion,
)
from platen.events.logins import LOGIN_PATTERN, is_reserved_login

# The AMQP header that carries a message's schema version (as `platen.events.base`).
HEADER_VERSION = "platen-schema-version"

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


class Money(Decimal):
    """An amount: a decimal string in JSON (an integer is taken too), never a float, a
    boolean or a non-finite number, exactly as `platen.events.money.Money` reads it."""

    __slots__ = ()


# As `platen.events.base.Login` reads it, but for its case: pydantic writes a login in
# lower case, and the client sends only the login it was configured with (kept in lower
# case by `config`). A reserved login is refused when a reply is encoded (`encode`).
# msgspec searches with Python's `re`, where `$` also matches before a final newline;
# `\Z` does not, so "alice\n" is refused here as pydantic refuses it.
Login = Annotated[str, msgspec.Meta(pattern=LOGIN_PATTERN.removesuffix("$") + r"\Z")]


class Part(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A structure inside a message body (an account option)."""


class Message(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A versioned message body, as the pydantic `platen.events.base.Message`."""

    message_type: ClassVar[str]
    schema_version: ClassVar[int] = 1
    message_kind: ClassVar[str] = ""
    desktop_kind: ClassVar[str]
    # version -> the step from that version to the next.
    upcasters: ClassVar[dict[int, Upcaster]] = {}
    # The fields that hold a login (checked for reserved names before sending).
    logins: ClassVar[tuple[str, ...]] = ()


class DesktopMessage(Message):
    """Sent to one user's desktop (`platen.desktop`, key `user.<login>.<kind>`)."""

    message_kind: ClassVar[str] = "desktop message"


class DesktopReply(Message):
    """Sent by a user's desktop (`platen.desktop.replies`); the server trusts none of it."""

    message_kind: ClassVar[str] = "desktop reply"


def _dec_hook(kind: type, value: Any) -> Any:
    if kind is Money:
        # A float has already lost the amount the sender meant (0.1 is not 0.1).
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ValueError(f"money must be a decimal string, not {type(value).__name__}")
        try:
            amount = Money(value)
        except InvalidOperation:
            raise ValueError(f"{value!r} is not an amount") from None
        if not amount.is_finite():
            raise ValueError("money must be a finite amount")
        return amount
    raise NotImplementedError(f"no decoding for {kind!r}")


def _enc_hook(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise NotImplementedError(f"cannot encode {type(value).__name__}")


_decoders: dict[type[Message], msgspec.json.Decoder] = {}
_encoder = msgspec.json.Encoder(enc_hook=_enc_hook, decimal_format="string")
_FIELD = re.compile(r"(?:missing required|unknown) field `([^`]*)`")
_WHERE = re.compile(r"^(?P<what>.*) - at `\$\.?(?P<where>[^`]*)`$", re.DOTALL)


def _decoder(model: type[Message]) -> msgspec.json.Decoder:
    decoder = _decoders.get(model)
    if decoder is None:
        decoder = _decoders[model] = msgspec.json.Decoder(model, dec_hook=_dec_hook)
    return decoder


def _short(exc: msgspec.ValidationError) -> str:
    """`where: what`, as `platen.events.registry` says it (msgspec says `what - at $.where`,
    and names a missing or unknown field in `what`)."""
    found = _WHERE.match(str(exc))
    what, where = (found["what"], found["where"]) if found else (str(exc), "")
    where = re.sub(r"\[(\d+)\]", r".\1", where)  # a dict's key stays `[...]`: msgspec names none
    if named := _FIELD.search(what):
        where = f"{where}.{named[1]}" if where else named[1]
    return f"{where or 'body'}: {what}"


def decode(
    models: dict[str, type[Message]],
    message_type: str | None,
    schema_version: int | None,
    body: bytes,
) -> Message:
    """Parse `body` as `message_type` (one of `models`) at `schema_version`, upcasting to
    the current version; raises ContractError as `platen.events.registry.decode` does."""
    if not message_type:
        raise UnknownMessageType("message has no type")
    model = models.get(message_type)
    if model is None:
        raise UnknownMessageType(f"unknown message type {message_type!r}")
    if schema_version is None:
        raise UnsupportedVersion(f"{message_type}: message has no schema version")
    if not isinstance(schema_version, int) or not 1 <= schema_version <= model.schema_version:
        raise UnsupportedVersion(
            f"{message_type}: schema version {schema_version} is not supported "
            f"(this consumer knows up to {model.schema_version})"
        )
    try:
        if schema_version == model.schema_version:
            return _decoder(model).decode(body)
        data = msgspec.json.decode(body)
    except msgspec.ValidationError as exc:
        raise MalformedMessage(f"{message_type}: {_short(exc)}") from None
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise MalformedMessage(f"{message_type}: body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise MalformedMessage(f"{message_type}: body is not a JSON object")
    version = schema_version
    while version < model.schema_version:
        step = model.upcasters.get(version)
        if step is None:
            raise UnsupportedVersion(f"{message_type}: no upcaster from version {version}")
        try:
            data = step(data)
        except (KeyError, TypeError, ValueError) as exc:
            raise MalformedMessage(
                f"{message_type}: version {version} body cannot be upcast: {exc!r}"
            ) from None
        version += 1
    try:
        # Written again and read by the same decoder: an upcast body is checked exactly
        # as a current one.
        return _decoder(model).decode(msgspec.json.encode(data))
    except msgspec.ValidationError as exc:
        raise MalformedMessage(f"{message_type}: {_short(exc)}") from None


def to_json(message: Message | Part) -> bytes:
    """The body of a message, as the server's codec writes it (money as strings)."""
    return _encoder.encode(message)


def encode(reply: DesktopReply) -> bytes:
    """The body of a reply, checked first as the server will check it: a reply that does
    not fit the contract raises ContractError here rather than being refused there."""
    body = to_json(reply)
    try:
        _decoder(type(reply)).decode(body)
    except msgspec.ValidationError as exc:
        raise MalformedMessage(f"{reply.message_type}: {_short(exc)}") from None
    for name in reply.logins:
        if is_reserved_login(getattr(reply, name)):
            raise MalformedMessage(
                f"{reply.message_type}: {name}: kept for Platen's own broker identities"
            )
    return body
