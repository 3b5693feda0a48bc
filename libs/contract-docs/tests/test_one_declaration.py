"""One declaration per subscription: the queue, its binding, the permissions and the
AsyncAPI document all follow from it. No broker, no database. (Moved from the runtime's
test_subscriptions.py with the AsyncAPI code.)"""

from __future__ import annotations

from pathlib import Path

from platen.broker_setup import permissions
from platen.contract_docs.asyncapi import asyncapi_app
from platen.contract_docs.contract_map import contract_map
from platen.events.jobs import JobCaptured, JobPrinted
from platen.events.routing import EVENTS
from platen.messaging import discovery
from platen.messaging.service import ServiceSpec
from platen.messaging.subscriptions import Subscriptions
from platen.messaging.topology import consumer_queues


def _audit(*, with_printed_consumer: bool) -> ServiceSpec:
    """A new service, `audit`, written as a service is: its handlers declare what they
    receive; it publishes nothing."""
    subscribe = Subscriptions("audit", command_prefix="audit")

    @subscribe.event(JobCaptured)
    async def on_captured(ctx, event: JobCaptured) -> None: ...

    if with_printed_consumer:
        # The one edit under test: a new event consumer, declared on its handler.
        @subscribe.event(JobPrinted)
        async def on_printed(ctx, event: JobPrinted) -> None: ...

    return ServiceSpec("audit", "audit", Path("."), subscriptions=subscribe)


def _document(spec: ServiceSpec) -> dict:
    app = asyncapi_app(contract_map([*discovery.specs().values(), spec]), title="t", version="1")
    # The data the YAML document is written from (`to_yaml` dumps exactly this): reading
    # it back through pure-Python YAML cost seconds a document, and told nothing more.
    return app.schema.to_specification().to_jsonable()


def _receives(document: dict, queue: str) -> set[str]:
    """The message types the document says `queue` receives."""
    found = set()
    for op in document["operations"].values():
        channel = document["channels"][op["channel"]["$ref"].rsplit("/", 1)[1]]
        if op["action"] == "receive" and channel["bindings"]["amqp"]["queue"]["name"] == queue:
            found |= {m["$ref"].rsplit("/", 1)[1] for m in op["messages"]}
    return found


def test_a_new_event_consumer_yields_its_binding_permissions_and_asyncapi_entry():
    before, after = _audit(with_printed_consumer=False), _audit(with_printed_consumer=True)

    # The binding: the service's events queue is bound to the new key too.
    [events_before] = [q for q in consumer_queues(before) if q.name == "audit.events"]
    [events_after] = [q for q in consumer_queues(after) if q.name == "audit.events"]
    assert (events_before.exchange, events_before.routing_keys) == (EVENTS, ("job.captured",))
    assert events_after.routing_keys == ("job.captured", "job.printed")

    # The permissions: the service reads, declares and binds its own queues and nobody
    # else's; it may publish nothing it did not declare.
    perms = permissions.service(after)
    for queue in ("audit.events", "audit.events.dlq", "audit.commands"):
        assert perms.may("read", queue) and perms.may("configure", queue), queue
    assert not perms.may("read", "pricing.events")
    assert not perms.may_publish(EVENTS, "job.printed")

    # The AsyncAPI document: audit.events receives job.printed, next to job-capture's
    # announcement of it.
    assert "job.printed" not in _receives(_document(before), "audit.events")
    assert _receives(_document(after), "audit.events") == {"job.captured", "job.printed"}
