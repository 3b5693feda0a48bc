"""The AsyncAPI document of the whole system, made with FastStream's own machinery.

A documentation-only `RabbitBroker` gets one typed publisher for every address a message
is sent to and one typed subscriber for every queue that receives it, all drawn from the
contract map (`platen.contract_docs.contract_map`); FastStream turns them into AsyncAPI 3.0
channels, operations and the messages' pydantic JSON schemas. The services' own brokers
cannot be documented directly: their one subscriber per queue sees an untyped
`RabbitMessage` and the dispatcher chooses the model by the `type` property.

FastStream leaves out what a Platen message is known by (the AMQP `type` property and the
`platen-schema-version` header) and puts channels in no fixed order, so the specification
it makes is annotated with those and put in a stable order here: the checked-in document
changes only when the code does.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from faststream import FastStream
from faststream.rabbit import ExchangeType, QueueType, RabbitBroker, RabbitExchange, RabbitQueue
from faststream.specification import AsyncAPI
from faststream.specification.asyncapi.utils import ref
from faststream.specification.asyncapi.v3_0_0.schema import Reference

from platen.contract_docs.contract_map import (
    COMMAND,
    DESKTOP_READER,
    REPLY,
    REPLY_EXCHANGE,
    ContractMap,
    Route,
    Subscription,
)
from platen.events.base import HEADER_VERSION, Message
from platen.events.routing import DEAD_LETTERS, REPLIES, UNROUTED
from platen.messaging.codec import HEADER_ERROR, HEADER_MARKS
from platen.messaging.topology import DELIVERY_LIMIT

SERVER_URL = "amqp://localhost:5672/"

_OVERVIEW = f"""\
Every message Platen sends or receives over RabbitMQ: where it is published (exchange
and routing key), who may publish it (the broker permissions of each identity), which
queues receive it and who reads them, and its JSON schema.

A body is a JSON object. Its metadata travels as AMQP properties: `type` (the message
type, e.g. `job.captured`), the header `{HEADER_VERSION}` (the version of that type's
schema), `message_id` (unique; consumers de-duplicate on it), `app_id` (the producer),
`timestamp`, `correlation_id` (the job or account a message concerns; for a reply, the
request's `message_id`) and `delivery_mode` 2. Money is sent as a decimal string
(`"0.30"`); a JSON float is refused. A consumer refuses a schema version newer than it
knows; older ones are upcast.

Events nobody is bound to go to `{UNROUTED}`. A message a service cannot handle is
dead-lettered through `{DEAD_LETTERS}` to `<queue>.dlq` with the reason in the
`{HEADER_ERROR}` header. Replies to requests go through `{REPLIES}`, never the default
exchange (no identity may publish there): a requester binds a queue of its own under
`reply.<its broker user, %-encoded>.<queue>` and names that key as the request's
`reply_to`; a service answers only a `reply_to` under the request's own AMQP `user_id`.
Placeholders in an address: `{{login}}` is a user's login, `{{reply_to}}` the reply key a
request named in its `reply_to` property. docs/integration.md explains how to consume and
send these messages.
"""
# One line per paragraph: the YAML reads better, and Markdown joins the lines anyway.
OVERVIEW = "\n\n".join(" ".join(p.split()) for p in _OVERVIEW.split("\n\n"))

_PARAMETERS = {
    "login": {"description": "A user's login.", "examples": ["alice"]},
    "reply_to": {
        "description": "The reply key the request named in its `reply_to` property: "
        "`reply.<the requester's broker user, %-encoded>.<its reply queue>`.",
        "examples": ["reply.platen-admin.amq.gen-JzTY20BRgKO-HjmUJj0wLg"],
    },
}


@dataclass(frozen=True)
class _Entry:
    """What FastStream does not say about one channel (and its operation)."""

    model: type[Message]
    summary: str


def asyncapi_app(contract: ContractMap, *, title: str, version: str) -> FastStream:
    """A FastStream app (never run) whose `schema` is the whole system's AsyncAPI document,
    e.g. for `faststream docs gen <module>:<app>` or `faststream docs serve`."""
    broker = RabbitBroker(
        specification_url=SERVER_URL,
        description="The RabbitMQ broker of a Platen installation (its host and vhost).",
        logger=None,
    )
    entries: dict[str, _Entry] = {}
    for route in contract.routes:
        entries[_route_id(route)] = _publish(broker, contract, route)
        for sub in contract.receivers(route):
            entries.setdefault(_subscription_id(sub), _subscribe(broker, sub))
    spec = _ContractAsyncAPI(entries, title=title, version=version, description=OVERVIEW)
    return FastStream(broker, specification=spec, logger=None)


def _publish(broker: RabbitBroker, contract: ContractMap, route: Route) -> _Entry:
    model = route.model
    lines = [f"{_name(model)} on {_exchange_name(route.exchange)}."]
    if route.kind == REPLY:
        lines.append(f"Answers: {_codes(route.answers)}.")
        lines.append(f"Sent by: {', '.join(route.senders)}, to the requester's `reply_to`.")
    else:
        lines.append(f"Sent by: {', '.join(route.senders)}.")
    receivers = contract.receivers(route)
    if receivers:
        lines.append(
            "Received by: "
            + "; ".join(f"{s.consumer} (queue `{s.queue.name}`)" for s in receivers)
            + "."
        )
    elif route.kind != REPLY:
        lines.append("Received by: no Platen queue; bind your own to follow it.")
    if route.kind == COMMAND:
        replies = " or ".join(_name(r) for r in route.replies) or "none"
        lines.append(
            f"Reply: {replies}, sent to `{REPLIES}` under the key named in `reply_to` "
            "(one of the sender's own), with this message's `message_id` as its "
            "`correlation_id`."
        )
    broker.publisher(
        routing_key=route.routing_key,
        exchange=_exchange(route.exchange),
        mandatory=True,
        persist=True,
        title=_route_id(route),
        description="\n\n".join(lines),
        schema=model,
    )
    return _Entry(model, f"Sent by {', '.join(route.senders)}")


def _subscribe(broker: RabbitBroker, sub: Subscription) -> _Entry:
    model, queue = sub.model, sub.queue
    if queue.exchange == REPLY_EXCHANGE:
        how = (
            f"bound to `{REPLIES}` by {sub.consumer} under its own reply key "
            f"(`reply.<its broker user>.{queue.name}`, sent as its requests' `reply_to`)"
        )
    else:
        keys = ", ".join(f"`{b}`" for b in sub.bindings)
        how = f"bound to {_exchange_name(queue.exchange)} with {keys}"
    lines = [f"{sub.consumer} receives {_name(model)} on the queue `{queue.name}`, {how}."]
    quorum = sub.consumer != DESKTOP_READER  # a service's queue; a desktop's is classic
    if quorum:
        lines.append(
            f"A quorum queue: after {DELIVERY_LIMIT} failed deliveries, or at once when the "
            f"message cannot be handled, it goes to `{queue.dead_letter_queue}`."
        )
    broker.subscriber(
        RabbitQueue(
            queue.name,
            routing_key=sub.bindings[0] if sub.bindings else "",
            durable=True,
            queue_type=QueueType.QUORUM if quorum else QueueType.CLASSIC,
            declare=False,
        ),
        _exchange(queue.exchange),
        title=_subscription_id(sub),
        description="\n\n".join(lines),
    )(_handler_of(model))
    return _Entry(model, f"Received by {sub.consumer} on `{queue.name}`")


def _handler_of(model: type[Message]):
    """A handler that does nothing, typed with `model` so FastStream documents its schema."""

    async def handle(body) -> None:
        return None

    handle.__annotations__["body"] = model
    handle.__name__ = model.__name__
    return handle


def _exchange(name: str) -> RabbitExchange | None:
    return RabbitExchange(name, type=ExchangeType.TOPIC, durable=True, declare=False)


def _exchange_name(name: str) -> str:
    return f"`{name}`" if name else "the default exchange"


def _name(model: type[Message]) -> str:
    return f"`{model.message_type}` v{model.schema_version} ({model.__name__})"


def _codes(words: tuple[str, ...]) -> str:
    return ", ".join(f"`{w}`" for w in words)


def _channel_id(*parts: str) -> str:
    # AsyncAPI ids may hold letters, digits, `.`, `-` and `_`: `{login}` becomes `login`.
    return re.sub(r"[^A-Za-z0-9._-]", "", ".".join(parts))


def _route_id(route: Route) -> str:
    if route.kind == REPLY:
        return _channel_id("reply", route.model.message_type)
    return _channel_id(route.exchange, route.routing_key)


def _subscription_id(sub: Subscription) -> str:
    return _channel_id(sub.queue.name, sub.model.message_type)


class _ContractAsyncAPI(AsyncAPI):
    """FastStream's AsyncAPI 3.0 specification, annotated and in a fixed order."""

    def __init__(self, entries: dict[str, _Entry], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._entries = entries

    def to_specification(self):
        # A name FastStream would overwrite silently (two channels, two schemas of one
        # name) would lose part of the contract: make it an error instead.
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            spec = super().to_specification()
        if set(spec.channels) != set(self._entries):
            raise RuntimeError(
                f"channels differ from the contract map: {set(spec.channels) ^ set(self._entries)}"
            )
        order = list(self._entries)
        spec.channels = {key: spec.channels[key] for key in order}
        spec.operations = {key: spec.operations[key] for key in order}
        made = spec.components.messages
        # FastStream makes one message per channel; the document names each message once,
        # by its type, and every channel that carries it refers to that one.
        messages: dict[str, Any] = {}
        for key, entry in self._entries.items():
            name = entry.model.message_type
            channel, operation = spec.channels[key], spec.operations[key]
            (made_ref,) = channel.messages.values()
            if name not in messages:
                messages[name] = made[unquote(made_ref.ref.rsplit("/", 1)[1])]
                _describe_message(messages[name], entry.model)
            channel.messages = {name: Reference(**ref("components", "messages", name))}
            operation.messages = [Reference(**ref("channels", key, "messages", name))]
            operation.summary = entry.summary
            _add_parameters(channel)
        spec.components.messages = messages
        spec.components.schemas = dict(sorted(spec.components.schemas.items()))
        return spec


def _add_parameters(channel: Any) -> None:
    names = re.findall(r"{(\w+)}", channel.address or "")
    if names:
        channel.parameters = {n: _PARAMETERS[n] for n in names}


def _describe_message(message: Any, model: type[Message]) -> None:
    message.name = model.message_type
    message.title = f"{model.__name__} ({model.message_type} v{model.schema_version})"
    message.summary = _first_paragraph(model.__doc__)
    message.contentType = "application/json"
    message.headers = {
        "type": "object",
        "properties": {
            HEADER_VERSION: {
                "type": "integer",
                "const": model.schema_version,
                "description": "The version of the message type's schema.",
            },
            HEADER_MARKS: {
                "type": "string",
                "description": (
                    "Optional. Log fields that follow a job from service to service, as a "
                    'JSON object, e.g. {"identity": "trusted"}; never an input to a '
                    "decision. Read only from messages services send."
                ),
            },
        },
        "required": [HEADER_VERSION],
    }
    # The AMQP binding's `messageType` is the AMQP `type` property: what a consumer
    # chooses the schema by.
    message.bindings = {"amqp": {"messageType": model.message_type, "bindingVersion": "0.3.0"}}


def _first_paragraph(doc: str | None) -> str | None:
    if not doc:
        return None
    return " ".join(doc.strip().split("\n\n", 1)[0].split())
