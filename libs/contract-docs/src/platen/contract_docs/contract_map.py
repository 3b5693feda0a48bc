"""Who sends each message of the contract, where to, and who receives it.

Drawn from the services' declarations (`platen.messaging.subscriptions`: what each handler
receives, what each service publishes, with the `Ping` every service answers), the return
types of command handlers (their replies), the permissions of the identities that are not
services, and the desktop kinds of the contract. The AsyncAPI document
(`platen.contract_docs.asyncapi`) is drawn from this map.

It takes the services' specs as an argument: libs never import services. A message it
cannot place (in the contract, but nobody may send it; a command handler that does not
name its replies; a model not in the registry) is an error, not a gap in the document.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from platen.broker_setup import permissions
from platen.broker_setup.permissions import Permissions
from platen.events.base import Message
from platen.events.desktop import DESKTOP_KINDS, REPLY_KINDS
from platen.events.registry import known_types
from platen.events.routing import (
    COMMANDS,
    DESKTOP,
    DESKTOP_REPLIES,
    EVENTS,
    REPLIES,
    desktop_key,
    desktop_queue,
)
from platen.messaging import discovery
from platen.messaging.service import ServiceSpec, queue_handlers
from platen.messaging.topology import ConsumerQueue, consumer_queues

# Placeholders for the parts of an address that differ per user or per request.
LOGIN = "{login}"
REPLY_TO = "{reply_to}"
REPLY_EXCHANGE = REPLIES  # replies go through it, under the request's reply_to

DESKTOP_READER = "the desktop client (platen-client)"
# The identities that may publish, as the installer grants them (installation.py), and
# the desktop's own, each with the permissions the broker enforces for it.
_OTHER_IDENTITIES: dict[str, Permissions] = {
    "platenctl": permissions.admin(),
    "print server (CUPS backend)": permissions.print_server(),
    DESKTOP_READER: permissions.desktop_user(LOGIN),
}

# The order kinds of message appear in.
EVENT, COMMAND, REPLY, DESKTOP_MESSAGE, DESKTOP_REPLY = (
    "event",
    "command",
    "reply",
    "desktop message",
    "desktop reply",
)
KINDS = (EVENT, COMMAND, REPLY, DESKTOP_MESSAGE, DESKTOP_REPLY)


class ContractMapError(ValueError):
    """The code does not say clearly who sends or receives a message."""


@dataclass(frozen=True)
class Route:
    """One address a message is published to, and who may publish it there."""

    model: type[Message]
    kind: str
    exchange: str
    routing_key: str
    senders: tuple[str, ...]
    replies: tuple[type[Message], ...] = ()  # a command's possible replies
    answers: tuple[str, ...] = ()  # a reply: the routing keys of the commands it answers


@dataclass(frozen=True)
class Subscription:
    """One consumer's queue receiving one message, by the queue's bindings that match."""

    model: type[Message]
    consumer: str
    queue: ConsumerQueue
    bindings: tuple[str, ...]


@dataclass(frozen=True)
class ContractMap:
    routes: tuple[Route, ...]
    subscriptions: tuple[Subscription, ...]

    def receivers(self, route: Route) -> list[Subscription]:
        """The queues `route` delivers to (a reply: those that ask for it by name)."""
        return [
            s
            for s in self.subscriptions
            if s.model is route.model
            and s.queue.exchange == route.exchange
            and (
                route.exchange == REPLY_EXCHANGE
                or any(topic_matches(b, route.routing_key) for b in s.bindings)
            )
        ]


def topic_matches(pattern: str, key: str) -> bool:
    """Whether a topic binding `pattern` (`*` one word, `#` any number) matches `key`."""

    def match(p: list[str], k: list[str]) -> bool:
        if not p:
            return not k
        if p[0] == "#":
            return any(match(p[1:], k[i:]) for i in range(len(k) + 1))
        return bool(k) and p[0] in ("*", k[0]) and match(p[1:], k[1:])

    return match(pattern.split("."), key.split("."))


@dataclass(frozen=True)
class _Handled:
    spec: ServiceSpec
    queue: ConsumerQueue
    model: type[Message]
    replies: tuple[type[Message], ...]


def contract_map(
    specs: Iterable[ServiceSpec], models: Mapping[str, type[Message]] | None = None
) -> ContractMap:
    """The map of every message in `models` (default: the whole registry)."""
    models = dict(known_types() if models is None else models)
    specs = sorted(specs, key=lambda s: s.name)
    handled = [h for spec in specs for h in _handled(spec, models)]
    # Who may send: every installed service, or the spec given in its place.
    services = discovery.specs() | {spec.name: spec for spec in specs}
    senders = {name: permissions.service(s) for name, s in services.items()} | _OTHER_IDENTITIES

    routes: list[Route] = []
    placed: set[type[Message]] = set()

    def add(route: Route) -> None:
        if route.kind != REPLY and not route.senders:
            raise ContractMapError(
                f"no identity may publish {route.model.message_type} to {route.exchange} "
                f"with the key {route.routing_key} (see permissions.py)"
            )
        routes.append(route)
        placed.add(route.model)

    def may_send(exchange: str, key: str) -> tuple[str, ...]:
        return tuple(sorted(n for n, p in senders.items() if p.may_publish(exchange, key)))

    for model, kind in DESKTOP_KINDS.items():
        key = desktop_key(LOGIN, kind)
        add(Route(model, DESKTOP_MESSAGE, DESKTOP, key, may_send(DESKTOP, key)))
    for model, kind in REPLY_KINDS.items():
        key = desktop_key(LOGIN, kind)
        add(Route(model, DESKTOP_REPLY, DESKTOP_REPLIES, key, may_send(DESKTOP_REPLIES, key)))

    answered: dict[type[Message], list[tuple[str, str]]] = {}
    for h in handled:
        if h.queue.exchange != COMMANDS:
            continue
        key = _command_key(h)
        add(Route(h.model, COMMAND, COMMANDS, key, may_send(COMMANDS, key), h.replies))
        for reply in h.replies:
            answered.setdefault(reply, []).append((h.spec.name, key))
    for model, commands in answered.items():
        services = tuple(sorted({service for service, _ in commands}))
        keys = tuple(sorted(key for _, key in commands))
        add(Route(model, REPLY, REPLY_EXCHANGE, REPLY_TO, services, answers=keys))

    for model in _by_type(models.values()):
        if model in placed:
            continue
        sent = may_send(EVENTS, model.message_type)
        consumed = any(h.model is model and h.queue.exchange == EVENTS for h in handled)
        if not sent and not consumed:
            raise ContractMapError(
                f"{model.message_type} ({model.__name__}) is in the contract, but no code "
                "handles it and no permission lets anyone publish it as an event"
            )
        add(Route(model, EVENT, EVENTS, model.message_type, sent))

    subscriptions = [_subscription(h, routes) for h in handled]
    subscriptions += [_desktop_subscription(r) for r in routes if r.kind == DESKTOP_MESSAGE]
    routes.sort(key=lambda r: (KINDS.index(r.kind), r.model.message_type, r.routing_key))
    subscriptions.sort(key=lambda s: (s.queue.name, s.model.message_type))
    return ContractMap(tuple(routes), tuple(subscriptions))


def _handled(spec: ServiceSpec, models: Mapping[str, type[Message]]) -> list[_Handled]:
    queues = {q.name.split(".", 1)[1]: q for q in consumer_queues(spec)}
    out = []
    for purpose, queue in sorted(queues.items()):
        for model, handler in queue_handlers(spec, purpose).items():
            if models.get(model.message_type) is not model:
                raise ContractMapError(f"{spec.name} handles {model.__name__}, not registered")
            replies = _replies(handler, models) if queue.exchange == COMMANDS else ()
            out.append(_Handled(spec, queue, model, replies))
    return out


def _replies(handler: object, models: Mapping[str, type[Message]]) -> tuple[type[Message], ...]:
    """The messages a command handler may answer with, from its return annotation."""
    name = getattr(handler, "__qualname__", repr(handler))
    try:
        returned = typing.get_type_hints(handler)["return"]
    except (KeyError, TypeError, NameError) as exc:
        raise ContractMapError(
            f"command handler {name}: annotate its return type (the replies it sends): {exc!r}"
        ) from None
    if typing.get_origin(returned) in (typing.Union, types.UnionType):
        options = typing.get_args(returned)
    else:
        options = (returned,)
    replies = tuple(t for t in options if t is not type(None))
    for reply in replies:
        if not (isinstance(reply, type) and models.get(reply.message_type) is reply):
            raise ContractMapError(f"command handler {name} returns {reply!r}, not a message")
    return tuple(sorted(replies, key=lambda m: m.message_type))


def _command_key(h: _Handled) -> str:
    """A command is addressed by its type, but one every service answers (`service.ping`)
    is addressed to each service under that service's prefix (`ledger.ping`)."""
    key = h.model.message_type
    if key.startswith("service."):
        key = f"{h.spec.subscriptions.command_prefix}.{key.split('.', 1)[1]}"
    return key


def _subscription(h: _Handled, routes: list[Route]) -> Subscription:
    for route in routes:
        if route.model is not h.model or route.exchange != h.queue.exchange:
            continue
        if route.exchange == REPLY_EXCHANGE:  # bound by its requester under its own key
            return Subscription(h.model, h.spec.name, h.queue, ())
        bindings = tuple(b for b in h.queue.routing_keys if topic_matches(b, route.routing_key))
        if bindings:
            return Subscription(h.model, h.spec.name, h.queue, bindings)
    raise ContractMapError(
        f"{h.spec.name} handles {h.model.message_type} on {h.queue.name}, "
        "but nothing sends it where that queue receives"
    )


def _desktop_subscription(route: Route) -> Subscription:
    """Each user's desktop reads everything sent to its own queue."""
    queue = ConsumerQueue(desktop_queue(LOGIN), DESKTOP, (desktop_key(LOGIN, "#"),))
    return Subscription(route.model, DESKTOP_READER, queue, queue.routing_keys)


def _by_type(models: Iterable[type[Message]]) -> list[type[Message]]:
    return sorted(models, key=lambda m: m.message_type)
