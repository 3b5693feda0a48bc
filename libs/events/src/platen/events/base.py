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

import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints

# Logins appear in routing keys and queue names (`user.<login>.*`, `desktop.<login>`),
# so the characters AMQP topic matching gives meaning to (* #) are not allowed. A dot is
# (`first.last`, common in Active Directory): a routing key carries the login as one word,
# its dots written %2E (`routing.login_word`), and a login holds no %.
LOGIN_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,63}$"
# A user's desktop signs in as a broker user named after their login, so a login may not
# be the name of one of Platen's own broker identities (`platen-admin`, a service's
# `platen-job-capture`, a print server's `platen-print-server.NAME`, each perhaps behind an
# installation's prefix) or the broker's `guest`: making that user would hand a desktop's
# permissions to, and take the place of, the identity.
_RESERVED = re.compile(r"(^|[-_.@])platen-|^guest$", re.IGNORECASE)


def is_reserved_login(name: str) -> bool:
    """Whether `name` is, or could be, one of the broker identities no user may take."""
    return _RESERVED.search(name) is not None


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


def is_valid_login(login: str) -> bool:
    """Whether `login` is one (in any case: the `Login` type keeps it in lower case)."""
    return re.fullmatch(LOGIN_PATTERN, login) is not None and not is_reserved_login(login)


def canonical_login(name: str, domains: Iterable[str] = ()) -> str | None:
    """The Platen login of a user name as a print server or a directory gives it, or None
    when it maps to no valid login. `DOMAIN\\name` and `name@REALM` lose a domain or realm
    that is one of the site's `domains` (any case; `*` for every domain); a name keeps an
    unlisted `@realm` as part of the login, and an unlisted `DOMAIN\\` makes it invalid
    (no login holds a backslash). Lower case, as every login is kept."""
    wanted = {d.lower() for d in domains}
    if "\\" in name:
        domain, _, rest = name.partition("\\")
        if "*" in wanted or domain.lower() in wanted:
            name = rest
    elif "@" in name:
        rest, _, realm = name.rpartition("@")
        if "*" in wanted or realm.lower() in wanted:
            name = rest
    return name.lower() if is_valid_login(name) else None


Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


def upcasts(from_version: int) -> Callable[[Upcaster], staticmethod]:
    """Decorator, in a message class: this function turns a body of `from_version` into
    one of `from_version + 1`. Decoding applies the steps in turn up to the current version."""

    def mark(fn: Upcaster) -> staticmethod:
        fn.upcasts_from = from_version  # type: ignore[attr-defined]
        return staticmethod(fn)

    return mark


def sides_for_pages(body: dict) -> dict:
    """The step of every message that once said `pages` for printed sides: the same counts
    under the names `sides`, `color_sides` and `grayscale_sides`. (Here, not with the jobs,
    so that the desktop's messages can use it without loading the job models.)"""
    renamed = {"pages": "sides", "color_pages": "color_sides", "grayscale_pages": "grayscale_sides"}
    return {renamed.get(k, k): v for k, v in body.items()}


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
