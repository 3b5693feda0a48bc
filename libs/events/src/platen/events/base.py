"""The base of every message in the contract, its kinds, and the envelope that carries it.

A message body is a pydantic model. Its metadata (id, type, schema version, producer,
time, correlation) travels beside it as AMQP properties, so that any AMQP client can
route, de-duplicate and trace messages without parsing bodies.

Every message is one of six kinds, each a base class of its own, so that what a message
is can be read from its class (and checked) rather than guessed from its name:

- `Event`: something that happened, published on `platen.events` under its type;
- `Command`: a request to change something, sent to the one service that owns it;
- `Query`: a request that changes nothing (list, show, status);
- `Reply`: the answer to a command or a query, sent to the requester's `reply_to`;
- `DesktopMessage`: sent to one user's desktop (`platen.desktop`, `user.<login>.<kind>`);
- `DesktopReply`: sent by a desktop (`platen.desktop.replies`), trusted for nothing.

A message changed incompatibly gets a new `schema_version` and an upcaster on its class
(`@upcasts(from_version)`) that turns a body of the old version into one of the next.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints

# Here for the contract's users; they live where the desktop client can read them
# without pydantic (`platen.events.logins`, `platen.events.upcasting`).
from platen.events.logins import (  # noqa: F401
    LOGIN_PATTERN,
    canonical_login,
    is_reserved_login,
    is_valid_login,
)
from platen.events.upcasting import sides_for_pages  # noqa: F401


def _not_reserved(login: str) -> str:
    if is_reserved_login(login):
        raise ValueError(f"{login!r} is kept for Platen's own broker identities")
    return login


# Logins match without regard to case (as in Active Directory, and as PaperCut does):
# every login is kept, routed and compared in lower case, whatever case it came in.
Login = Annotated[
    str, StringConstraints(pattern=LOGIN_PATTERN, to_lower=True), AfterValidator(_not_reserved)
]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
PrinterName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")]
# Here rather than with the accounts: the desktop's messages name groups too, and the
# desktop client should not have to build every account model to read them.
GroupName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,63}$")]


# The AMQP header that carries a message's schema version (the other envelope fields are
# standard AMQP properties).
HEADER_VERSION = "platen-schema-version"


Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


def upcasts(from_version: int) -> Callable[[Upcaster], staticmethod]:
    """Decorator, in a message class: this function turns a body of `from_version` into
    one of `from_version + 1`. Decoding applies the steps in turn up to the current version."""

    def mark(fn: Upcaster) -> staticmethod:
        fn.upcasts_from = from_version  # type: ignore[attr-defined]
        return staticmethod(fn)

    return mark


class Part(BaseModel):
    """A structure inside a message body (a line of a breakdown, an account option)."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class Message(BaseModel):
    """A versioned message body. Subclass one of the kinds below, never this class: a
    concrete message sets `message_type`, and `schema_version` once it has changed."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    message_type: ClassVar[str]
    schema_version: ClassVar[int] = 1
    # What the message is: set by the kind's base class, never by a message.
    message_kind: ClassVar[str] = ""
    # version -> the step from that version to the next (see `upcasts`).
    upcasters: ClassVar[dict[int, Upcaster]] = {}

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        steps = {}
        for attribute in list(vars(cls).values()):
            # Only what `upcasts` made: asking other attributes (a model's not yet built
            # validator, with `defer_build`) for `__func__` would build them.
            if not isinstance(attribute, staticmethod):
                continue
            fn = attribute.__func__
            if hasattr(fn, "upcasts_from"):
                if fn.upcasts_from in steps:
                    raise TypeError(f"{cls.__name__}: two upcasters from v{fn.upcasts_from}")
                steps[fn.upcasts_from] = fn
        cls.upcasters = steps


class Event(Message):
    """Something that happened. Published on `platen.events` with its type as routing key;
    any service may bind to it. Past tense: `job.printed`, `user.added`."""

    message_kind: ClassVar[str] = "event"


class JobEvent(Event):
    """An event about one print job. Every one names the job the same way, with the same
    types: its id (also the AMQP correlation id), its user, its printer, its document."""

    job_id: uuid.UUID
    user: Login
    printer: PrinterName
    document_name: Name


class Command(Message):
    """A request to change something, sent on `platen.commands` to the service that owns
    it (routing key: the service's prefix, then the command). Answered with a `Reply`."""

    message_kind: ClassVar[str] = "command"


class Query(Message):
    """A request for information that changes nothing, sent like a command and answered
    with a `Reply`. Safe to ask again."""

    message_kind: ClassVar[str] = "query"


class Reply(Message):
    """The answer to a command or a query, published to the requester's `reply_to` with
    the request's message id as correlation id."""

    message_kind: ClassVar[str] = "reply"


class DesktopMessage(Message):
    """Sent to one user's desktop: on `platen.desktop` with the key `user.<login>.<kind>`,
    where `<kind>` is the class's `desktop_kind`."""

    message_kind: ClassVar[str] = "desktop message"
    desktop_kind: ClassVar[str]


class DesktopReply(Message):
    """Sent by a user's desktop on `platen.desktop.replies` with the key
    `user.<login>.<kind>` (`desktop_kind`). The server trusts none of its content: the
    broker-checked `user_id` and routing key say who sent it."""

    message_kind: ClassVar[str] = "desktop reply"
    desktop_kind: ClassVar[str]


KINDS: tuple[type[Message], ...] = (Event, Command, Query, Reply, DesktopMessage, DesktopReply)


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
