"""What a service receives and publishes, declared once, where its handlers are written.

Each service has one `Subscriptions` (its `subscribe`), which names what the service
publishes; each handler declares what it receives with a decorator on its own definition:

    @subscribe.event(JobCaptured)
    async def on_job_captured(ctx, event): ...

Everything else follows from these declarations, never from a second list: the queues
and their bindings (`topology`), each service's broker permissions (`permissions`), the
AsyncAPI document (`contract_map`), and what `ctx.emit` lets a handler publish.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from platen.events.base import Message
from platen.events.routing import COMMANDS, DESKTOP, EVENTS

H = TypeVar("H", bound=Callable[..., Any])

# The queues a service may have, by purpose: `<service>.<purpose>`.
PURPOSES = EVENT_QUEUE, COMMAND_QUEUE, DESKTOP_REPLY_QUEUE, ANSWER_QUEUE = (
    "events",
    "commands",
    "replies",
    "answers",
)


class UndeclaredMessage(TypeError):
    """A handler emitted a message its service does not declare it publishes (a bug)."""


class Subscriptions:
    """One service's subscriptions (declared by its handlers) and what it publishes.

    `publishes`: the events it announces on `platen.events`; `sends`: the commands it sends
    other services on `platen.commands`; `to_desktops`: what it sends users' desktops;
    `to_print_servers`: what it pushes to waiting CUPS backends under their decision keys
    on `platen.replies` (`platen.events.routing.decision_key`); `batched`: the purposes
    (`EVENT_QUEUE`, ...) of its queues handled in batches (`platen.messaging.batching`),
    of up to `batch_size` deliveries each (None: the prefetch, `PLATEN_PREFETCH`).
    """

    def __init__(
        self,
        service: str,
        *,
        command_prefix: str,
        publishes: Iterable[type[Message]] = (),
        sends: Iterable[type[Message]] = (),
        to_desktops: Iterable[type[Message]] = (),
        to_print_servers: Iterable[type[Message]] = (),
        batched: Iterable[str] = (),
        batch_size: int | None = None,
    ) -> None:
        self.service = service
        # The purposes of the queues whose deliveries are handled in batches, several in one
        # transaction (`platen.messaging.batching`); every other queue, one at a time.
        self.batched = frozenset(batched)
        if unknown := self.batched - set(PURPOSES):
            raise ValueError(f"{service}: no queue purpose {sorted(unknown)} to batch")
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"{service}: a batch of {batch_size} deliveries")
        self.batch_size = batch_size
        self.to_print_servers = frozenset(to_print_servers)
        self.command_prefix = command_prefix
        self.published = {
            EVENTS: frozenset(publishes),
            COMMANDS: frozenset(sends),
            DESKTOP: frozenset(to_desktops),
        }
        self._handlers: dict[str, dict[type[Message], Callable[..., Any]]] = {}
        self.queries: set[type[Message]] = set()
        # command -> the identities it is accepted from ("admin", a service's name), by
        # the broker-checked AMQP user_id (`platen.messaging.senders`); absent: anyone the
        # broker lets publish it.
        self.senders: dict[type[Message], frozenset[str]] = {}

    def _on(self, purpose: str, models: tuple[type[Message], ...]) -> Callable[[H], H]:
        def declare(handler: H) -> H:
            handlers = self._handlers.setdefault(purpose, {})
            for model in models:
                if model in handlers:
                    raise ValueError(
                        f"{self.service}: {model.__name__} on its {purpose} queue already "
                        f"has a handler ({handlers[model].__qualname__})"
                    )
                handlers[model] = handler
            return handler

        return declare

    def event(self, *models: type[Message]) -> Callable[[H], H]:
        """The handler of these events: each is bound to the service's events queue."""
        return self._on(EVENT_QUEUE, models)

    def command(
        self, *models: type[Message], senders: Iterable[str] | None = None
    ) -> Callable[[H], H]:
        """The handler of these commands or queries (`<command_prefix>.…`): its return
        annotation names the replies it sends. `senders`: the only identities they are
        accepted from ("admin" for platenctl, or a service's name)."""
        if senders is not None:
            self.senders.update({m: frozenset(senders) for m in models})
        for model in models:
            # Its queue is bound to `<command_prefix>.#`: any other key never reaches it.
            if not model.message_type.startswith(f"{self.command_prefix}."):
                raise ValueError(
                    f"{self.service} answers commands `{self.command_prefix}.…`, "
                    f"not {model.message_type}"
                )
        # Where the contract says a message's kind (`message_kind`), a query is known as
        # one without being declared again.
        self.queries.update(m for m in models if getattr(m, "message_kind", "") == "query")
        return self._on(COMMAND_QUEUE, models)

    def query(
        self, *models: type[Message], senders: Iterable[str] | None = None
    ) -> Callable[[H], H]:
        """A command that only asks (show, list, status): it changes nothing, so it is
        answered in a read-only transaction and leaves no inbox row."""
        for model in models:
            if getattr(model, "message_kind", "query") != "query":
                raise ValueError(f"{model.__name__} is a {model.message_kind}, not a query")
        declare = self.command(*models, senders=senders)
        self.queries.update(models)
        return declare

    def desktop_reply(self, *models: type[Message]) -> Callable[[H], H]:
        """The handler of what users answer from their desktops (`user.<login>.<kind>`)."""
        return self._on(DESKTOP_REPLY_QUEUE, models)

    def answer(self, *models: type[Message]) -> Callable[[H], H]:
        """The handler of the replies to commands this service sends (its own queue,
        named in those commands' `reply_to`)."""
        return self._on(ANSWER_QUEUE, models)

    def bind(self, instance: object) -> None:
        """Handlers declared on the methods of a class: make them `instance`'s methods
        (the service builds the one instance in its composition root)."""
        prefix = type(instance).__qualname__ + "."
        for handlers in self._handlers.values():
            for model, fn in handlers.items():
                if getattr(fn, "__qualname__", "").startswith(prefix):
                    handlers[model] = getattr(instance, fn.__name__)

    def handlers(self, purpose: str) -> dict[type[Message], Callable[..., Any]]:
        """The declared handlers of one queue. A method never bound is refused here, before
        a delivery would call it without its instance."""
        handlers = dict(self._handlers.get(purpose, {}))
        for fn in handlers.values():
            qualname = getattr(fn, "__qualname__", "")
            in_class = qualname.count(".") and qualname.split(".")[-2] != "<locals>"
            if in_class and not hasattr(fn, "__self__"):
                raise ValueError(f"{self.service}: {qualname} is a method; `bind` its instance")
        return handlers

    def received(self, purpose: str) -> list[type[Message]]:
        return sorted(self._handlers.get(purpose, {}), key=lambda m: m.message_type)

    def check_emit(self, message: Message, exchange: str) -> None:
        """Refuse publishing what the service does not declare: its permissions are drawn
        from the declaration, so the broker would refuse it later, and less clearly."""
        allowed = self.published.get(exchange)
        if allowed is not None and type(message) not in allowed:
            raise UndeclaredMessage(
                f"{self.service} publishes {type(message).__name__} on {exchange}, but does "
                "not declare it (its Subscriptions: publishes / sends / to_desktops)"
            )
