"""The base of every message in the contract and the envelope that carries it.

A message body is a pydantic model. Its metadata (id, type, schema version, producer,
time, correlation) travels beside it as AMQP properties, so that any AMQP client can
route, de-duplicate and trace messages without parsing bodies.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, ClassVar

from pydantic import BaseModel, ConfigDict, StringConstraints

# Logins appear in routing keys and queue names (`user.<login>.*`, `desktop.<login>`),
# so the characters AMQP topic matching gives meaning to (. * #) are not allowed.
LOGIN_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_@-]{0,63}$"
Login = Annotated[str, StringConstraints(pattern=LOGIN_PATTERN)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
PrinterName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")]


# The AMQP header that carries a message's schema version (the other envelope fields are
# standard AMQP properties).
HEADER_VERSION = "platen-schema-version"


def is_valid_login(login: str) -> bool:
    return re.fullmatch(LOGIN_PATTERN, login) is not None


class Message(BaseModel):
    """A versioned message body. Subclasses set `message_type` and `schema_version`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    message_type: ClassVar[str]
    schema_version: ClassVar[int] = 1


def now() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True)
class Envelope:
    """Metadata that travels with every message (as AMQP properties)."""

    message_type: str
    schema_version: int
    producer: str
    correlation_id: str | None = None
    message_id: str = field(default_factory=new_id)
    occurred_at: datetime = field(default_factory=now)
