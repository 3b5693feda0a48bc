"""Who may do what at the broker: the permissions of every Platen identity, in one place.

RabbitMQ grants three regular expressions per user and vhost (configure, write, read: over
exchange and queue names) and, on topic exchanges, a write and a read expression over
routing keys. Everything here is pure data, so that the rules can be read, tested and
applied (by `platen.broker_setup.broker_admin`) from the same definitions.

- A desktop identity reads only its own queue (each desktop of a user has one), publishes
  only replies under its own routing keys, and declares, binds and deletes nothing.
  RabbitMQ also checks the `user_id` property of what it publishes against the login it
  authenticated with.
- A service declares, binds and reads only its own queues (the installer declared the
  whole topology), and publishes only the events and commands it declares
  (`platen.messaging.subscriptions`).
- The admin CLI sends commands and may watch events; the CUPS backend only submits jobs
  and asks about them.
- Nobody may publish to the default exchange, which reaches every queue by name. Replies
  to requests go through `platen.replies`: a requester binds (topic read) only under its
  own `reply.<user>.`, a service publishes there (and answers only a request's own
  sender, `handling._may_reply`). Replayed dead letters go through `platen.replay`, where
  a service may publish only its own queues' names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from platen.events.identities import PRINT_SERVER_NAME_PATTERN
from platen.events.routing import (
    COMMANDS,
    DEAD_LETTER,
    DEAD_LETTERS,
    DESKTOP,
    DESKTOP_REPLIES,
    EVENTS,
    REPLAY,
    REPLIES,
    UNROUTED,
    decision_prefix,
    desktop_queue,
    login_of_broker_user,
    login_word,
    print_server_of,
    reply_prefix,
)
from platen.messaging import discovery
from platen.messaging.senders import PRINT_SERVER_COMMANDS
from platen.messaging.subscriptions import DESKTOP_REPLY_QUEUE
from platen.messaging.topology import consumer_queues

if TYPE_CHECKING:
    from platen.messaging.service import ServiceSpec

NOTHING = "^$"
DEFAULT_EXCHANGE = "amq.default"  # no identity may publish here (see above)
SERVER_NAMED = r"amq\.gen-.*"  # queues the broker names, e.g. for `platenctl watch`


@dataclass(frozen=True)
class TopicPermission:
    exchange: str
    write: str = NOTHING
    read: str = ".*"


@dataclass(frozen=True)
class Permissions:
    configure: str = NOTHING
    write: str = NOTHING
    read: str = NOTHING
    topics: tuple[TopicPermission, ...] = field(default_factory=tuple)
    # Broker-wide limits on the user (None: the broker's own, unlimited): so that one
    # identity cannot exhaust the broker's connections or channels for everyone.
    max_connections: int | None = None
    max_channels: int | None = None

    def topic(self, exchange: str) -> TopicPermission | None:
        return next((t for t in self.topics if t.exchange == exchange), None)

    def may(self, action: str, resource: str) -> bool:
        """Whether RabbitMQ would let this identity `action` (configure/write/read) the
        exchange or queue named `resource` (the same full-match RabbitMQ applies)."""
        return re.search(getattr(self, action), resource) is not None

    def may_publish(self, exchange: str, routing_key: str) -> bool:
        if not self.may("write", exchange):
            return False
        topic = self.topic(exchange)
        return topic is None or re.search(topic.write, routing_key) is not None


def _any_of(*names: str) -> str:
    return "^(" + "|".join(names) + ")$"


def _exact(*names: str) -> str:
    return _any_of(*(re.escape(n) for n in names))


_EXCHANGES = (
    EVENTS,
    COMMANDS,
    DESKTOP,
    DESKTOP_REPLIES,
    DEAD_LETTER,
    DEAD_LETTERS,
    UNROUTED,
    REPLIES,
    REPLAY,
)
# What a service publishes to (the rest it may only read, to bind its queues): never
# `platen.dlx`, a direct exchange that would take any queue's name as a key.
_PUBLISHED_TO = (EVENTS, COMMANDS, DESKTOP, REPLIES, REPLAY, DEAD_LETTERS)


def replies_of(user: str | None) -> TopicPermission:
    """On `platen.replies`: bind only under `user`'s own reply keys, publish nothing. (No
    user known: bind nothing.) The user is encoded as one dot-free word, so the prefix of
    user `a` is no prefix of user `a.b`'s keys."""
    read = "^" + re.escape(reply_prefix(user)) if user else NOTHING
    return TopicPermission(REPLIES, write=NOTHING, read=read)


# A user may sign in from a few desktops at once (the client uses one connection with two
# channels); far more is a program loading the broker.
DESKTOP_MAX_CONNECTIONS = 20
DESKTOP_MAX_CHANNELS = 60


def desktop_user(identity: str) -> Permissions:
    """A desktop signed in as broker user `identity`: a login (the administrator-issued
    credential) or `<login>~<desktop>` (a desktop signed in with the directory password).
    It reads its own queue only, not another desktop's of the same user (which would take
    that desktop's messages), and replies for its login."""
    login = login_of_broker_user(identity)
    return Permissions(
        max_connections=DESKTOP_MAX_CONNECTIONS,
        max_channels=DESKTOP_MAX_CHANNELS,
        configure=NOTHING,
        write=_exact(DESKTOP_REPLIES),
        read=_exact(desktop_queue(identity)),
        topics=(
            TopicPermission(
                DESKTOP_REPLIES, write=rf"^user\.{re.escape(login_word(login))}\.[^.]+$"
            ),
            TopicPermission(EVENTS, write=NOTHING, read=NOTHING),
            TopicPermission(COMMANDS, write=NOTHING, read=NOTHING),
            TopicPermission(DESKTOP, write=NOTHING, read=NOTHING),
        ),
    )


def _keys(models) -> str:
    return _exact(*sorted(m.message_type for m in models)) if models else NOTHING


def service(name: str | ServiceSpec, user: str | None = None) -> Permissions:
    """A service declares, binds and reads its own queues only; the installer declared the
    others. (Configure also means delete: pricing must not be able to drop the ledger's
    queue.) It publishes exactly the events and commands its `Subscriptions` declare:
    nothing wider, so a compromised pricing service cannot announce a job as printed.
    `user`: the broker user it signs in as, under whose reply keys alone it may bind."""
    spec = discovery.spec(name) if isinstance(name, str) else name
    published = spec.subscriptions.published
    queues = [q.name for q in consumer_queues(spec)]
    # Its own queues, and broker-named ones: exclusive to the connection that made them,
    # for the replies to requests it makes itself (`platen.rpc`).
    own = ["(" + "|".join(re.escape(q) for q in queues) + r")(\.dlq)?", SERVER_NAMED]
    desktop_write = NOTHING
    if published[DESKTOP]:
        own.append(r"desktop\..+")  # it declares each user's desktop queue and fills it
        desktop_write = r"^user\..+$"
    exchanges = [re.escape(n) for n in _EXCHANGES]
    published_to = [re.escape(n) for n in _PUBLISHED_TO]
    prefix = spec.subscriptions.command_prefix
    reads_desktop_replies = bool(spec.subscriptions.received(DESKTOP_REPLY_QUEUE))
    # Any requester's reply key (the dispatcher answers only the request's sender), and
    # the print servers' decision keys if it pushes decisions to their backends.
    replies_write = r"^(reply|decision)\." if spec.subscriptions.to_print_servers else r"^reply\."
    return Permissions(
        # Its own queues only: no exchange (configure also means delete).
        configure=_any_of(*own),
        write=_any_of(*published_to, *own),
        read=_any_of(*exchanges, *own),
        topics=(
            TopicPermission(EVENTS, write=_keys(published[EVENTS])),
            # It binds its commands queue under its own prefix, and nothing else: another
            # service's commands (an answer carrying a PIN) are not for it to read.
            TopicPermission(
                COMMANDS, write=_keys(published[COMMANDS]), read="^" + re.escape(prefix) + r"\."
            ),
            TopicPermission(
                DESKTOP, write=desktop_write, read=".*" if published[DESKTOP] else NOTHING
            ),
            # What desktops answer (PINs, comments) is read only by the service that
            # handles it.
            TopicPermission(
                DESKTOP_REPLIES, write=NOTHING, read=".*" if reads_desktop_replies else NOTHING
            ),
            TopicPermission(REPLIES, write=replies_write, read=replies_of(user).read),
            # Its own queues only, each bound there under its own name.
            TopicPermission(REPLAY, write=_exact(*queues), read=_exact(*queues)),
            TopicPermission(DEAD_LETTERS, write=_exact(*queues), read=_exact(*queues)),
        ),
    )


def admin(user: str | None = None) -> Permissions:
    """`platenctl` (signed in as broker user `user`): sends any command, and may watch
    events and receive replies on queues of its own."""
    return Permissions(
        configure=_any_of(SERVER_NAMED),
        write=_any_of(re.escape(COMMANDS), SERVER_NAMED),
        read=_any_of(re.escape(EVENTS), re.escape(REPLIES), SERVER_NAMED),
        topics=(
            TopicPermission(COMMANDS, write=".*"),
            TopicPermission(EVENTS, write=NOTHING),
            replies_of(user),
        ),
    )


def print_server(user: str | None = None) -> Permissions:
    """The Platen CUPS backend (signed in as broker user `user`): submits jobs, asks their
    status, reports their outcome, and receives the replies on a queue of its own. On that
    queue it also binds its own jobs' decision keys (`decision.<its name>.<job id>`), where
    job-capture pushes a decision the moment it commits: it may bind no other print
    server's, so it learns nothing of their jobs."""
    replies = replies_of(user)
    name = print_server_of(user)
    if name is not None and re.fullmatch(PRINT_SERVER_NAME_PATTERN, name):
        replies = TopicPermission(
            REPLIES,
            write=NOTHING,
            read=f"{replies.read}|^{re.escape(decision_prefix(name))}",
        )
    return Permissions(
        configure=_any_of(SERVER_NAMED),
        write=_any_of(re.escape(COMMANDS), SERVER_NAMED),
        read=_any_of(re.escape(REPLIES), SERVER_NAMED),
        topics=(TopicPermission(COMMANDS, write=_exact(*PRINT_SERVER_COMMANDS)), replies),
    )
