"""Decode message bodies by type and version, upcasting old versions.

Changing an event means a new version plus an upcaster from the old one (on the class,
`platen.events.base.upcasts`), never an edit in place: a consumer built today still reads
what a producer wrote last year.
"""

from __future__ import annotations

import json
from typing import TypeVar

from pydantic import ValidationError

from platen.events.base import KINDS, Message
from platen.events.errors import (  # noqa: F401 (re-exported: the registry's errors)
    ContractError,
    MalformedMessage,
    UnknownMessageType,
    UnsupportedVersion,
)

M = TypeVar("M", bound=type[Message])


_models: dict[str, type[Message]] = {}


def register(model: M) -> M:
    """Class decorator: make a model decodable by its message type."""
    if not issubclass(model, KINDS):
        kinds = ", ".join(k.__name__ for k in KINDS)
        raise TypeError(f"{model.__name__} must subclass one of the kinds ({kinds})")
    existing = _models.get(model.message_type)
    if existing is not None and existing is not model:
        raise RuntimeError(f"message type {model.message_type} registered twice")
    _models[model.message_type] = model
    return model


def _import_all() -> None:
    """Import every aggregate's module, registering all its models (`platen.events` loads
    them only when named)."""
    import platen.events

    for name in platen.events.AGGREGATES:
        getattr(platen.events, name)


def load_all() -> None:
    """Import every model and build every validator now, as a process that forks workers
    wants once before forking: a model's validator is otherwise built in each process
    when a message of its type is first read or sent (`defer_build`, `base.Message`)."""
    _import_all()
    for model in _models.values():
        model.model_rebuild()


def model_for(message_type: str) -> type[Message]:
    if message_type not in _models:
        _import_all()  # a type of a module nobody has named yet
    try:
        return _models[message_type]
    except KeyError:
        raise UnknownMessageType(f"unknown message type {message_type!r}") from None


def known_types() -> dict[str, type[Message]]:
    _import_all()
    return dict(_models)


def decode(message_type: str | None, schema_version: int | None, body: bytes) -> Message:
    """Parse `body` as `message_type` at `schema_version`, upcasting to the current version."""
    if not message_type:
        raise UnknownMessageType("message has no type")
    model = model_for(message_type)
    if schema_version is None:
        raise UnsupportedVersion(f"{message_type}: message has no schema version")
    if schema_version > model.schema_version or schema_version < 1:
        raise UnsupportedVersion(
            f"{message_type}: schema version {schema_version} is not supported "
            f"(this consumer knows up to {model.schema_version})"
        )
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedMessage(f"{message_type}: body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise MalformedMessage(f"{message_type}: body is not a JSON object")
    version = schema_version
    while version < model.schema_version:
        try:
            step = model.upcasters[version]
        except KeyError:
            raise UnsupportedVersion(
                f"{message_type}: no upcaster from version {version}"
            ) from None
        try:
            data = step(data)
        except (KeyError, TypeError, ValueError) as exc:
            # An old body too broken to upcast is as malformed as a broken new one.
            raise MalformedMessage(
                f"{message_type}: version {version} body cannot be upcast: {exc!r}"
            ) from None
        version += 1
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise MalformedMessage(f"{message_type}: {_short(exc)}") from None


def encode(message: Message) -> bytes:
    return message.model_dump_json().encode()


def _short(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or "body"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)
