"""Apply one delivered message exactly once, or dead-letter it with the reason.

The steps for every delivery:
1. Decode it against the contract. A message that does not fit can never succeed:
   it goes to the queue's dead-letter queue with the reason in its headers, and is acked.
2. In one database transaction: claim its id in the inbox (a redelivery stops here), run
   the handler, which changes state and adds outgoing messages to the outbox. A handler
   with slow work that needs no database (analysing a document) has it done first, outside
   any transaction (`outside_transaction`), and finds the result in `ctx.prepared`.
3. After the commit: run the effects the handler left for then (`ctx.after_commit`), hand
   its outbox rows to the relay to publish from memory, send the reply if the sender asked
   for one (until the broker confirms it), and only then ack.
A handler that raises `Rejected` dead-letters the message the same way. Any other error is
treated as transient (database or broker trouble): the message is returned to the queue,
until its last allowed delivery (the queue's delivery limit, counted by the broker in
`x-delivery-count`), which fails into the dead-letter queue with the error in its headers.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import structlog
from aio_pika.abc import AbstractIncomingMessage

from platen.db import checked_transaction
from platen.events.base import Envelope, Message
from platen.events.registry import ContractError, decode, encode
from platen.events.routing import COMMANDS, DEAD_LETTERS, EVENTS, REPLIES, reply_prefix
from platen.events.system import ErrorReply
from platen.messaging import inbox, outbox, redaction
from platen.messaging.codec import HEADER_ERROR, HEADER_QUEUE, build, envelope_for, from_amqp
from platen.messaging.dead_letters import copy_of
from platen.messaging.logs import correlation_fields
from platen.messaging.marks import KNOWN as MARK_KEYS
from platen.messaging.marks import checked as checked_marks
from platen.messaging.marks import encode as encode_marks
from platen.messaging.marks import of_delivery
from platen.messaging.outbox import OutboxRelay
from platen.messaging.publisher import Publisher
from platen.messaging.senders import SenderCheck, sender_of
from platen.messaging.subscriptions import Subscriptions
from platen.messaging.topology import DELIVERY_LIMIT
from platen.operations.metrics import Metrics

log = structlog.get_logger(__name__)

# Seconds a failed delivery waits before it is returned to its queue.
BACK_OFF = 0.5


def is_outage(exc: BaseException) -> bool:
    """Whether `exc` says the database is unreachable, rather than that this message or
    the code handling it is wrong."""
    return isinstance(
        exc,
        OSError
        | asyncpg.PostgresConnectionError
        | asyncpg.CannotConnectNowError
        | asyncpg.TooManyConnectionsError
        | asyncpg.AdminShutdownError
        | asyncpg.InterfaceError,
    )


class Rejected(Exception):
    """The message can never be applied; dead-letter it with this reason."""


@dataclass
class HandlerContext:
    """What a handler may use: the open transaction and the outbox of its service."""

    conn: asyncpg.Connection
    envelope: Envelope
    producer: str
    publisher: Publisher
    log: Any
    # Where the delivery came from: what a consumer of user replies checks the sender by.
    routing_key: str = ""
    user_id: str | None = None
    # The service's store (its repository adapter) over this delivery's transaction, made
    # by the `store` factory the service gives its ServiceSpec. The transaction is the unit
    # of work: everything a handler saves or emits commits together, or not at all.
    store: Any = None
    # Log fields that follow the job to the next service (platen.messaging.marks): those
    # the delivery carried, plus any the handler adds with `mark`.
    marks: dict[str, str] = field(default_factory=dict)
    # What the service declares it publishes: `emit` refuses anything else.
    subscriptions: Subscriptions | None = None

    def mark(self, **fields: str) -> None:
        """Mark the job this message is about: the fields go on this handler's log lines
        and on every message it emits from now on. Unknown marks are refused."""
        accepted = checked_marks(fields)
        self.marks.update(accepted)
        structlog.contextvars.bind_contextvars(**accepted)

    effects: list[Callable[[], Awaitable[object]]] = field(default_factory=list)
    # Where `emit` leaves its outbox rows when a batch writes them all at once before its
    # commit (None: each is written when emitted). Whoever sets it writes them
    # (`outbox.add_rows`) in the same transaction.
    outbox_rows: list[tuple] | None = None
    # What the handler's `outside_transaction` step returned for this message (None: it
    # has none).
    prepared: Any = None
    # A batch's `emit_latest` events still to be made, by key, in the order of each key's
    # last request; shared by the batch's contexts and emitted at its end (`emit_latest_of`).
    # None: not in a batch, and each is emitted when requested.
    latest: dict[str, Callable[[], Awaitable[object]]] | None = None

    def after_commit(self, effect: Callable[[], Awaitable[object]]) -> None:
        """Run `effect` once this delivery's transaction has committed, before its reply is
        sent: for an effect outside the database (the broker's management API) that must not
        happen for a transaction that rolls back. If it raises, the delivery is given back,
        and its redelivery is skipped by the inbox: an effect that must not be lost keeps
        its own retry."""
        self.effects.append(effect)

    async def emit(
        self,
        message: Message,
        *,
        correlation_id: str | None = None,
        exchange: str = EVENTS,
        routing_key: str | None = None,
        expiration_ms: int | None = None,
        reply_to: str | None = None,
    ) -> str:
        """Publish `message` once this transaction commits; returns its message id.
        `reply_to` names this service's queue a command's reply goes to (the outbox relay
        sends it as the service's reply key, `platen.events.routing.reply_key`); the reply
        carries the command's message id as its correlation id."""
        if self.subscriptions is not None:
            self.subscriptions.check_emit(message, exchange)
        env = envelope_for(message, self.producer, correlation_id)
        where = outbox.Where(
            exchange=exchange,
            routing_key=routing_key or message.message_type,
            expiration_ms=expiration_ms,
            reply_to=reply_to,
            marks=encode_marks(self.marks),
        )
        return await self.keep(message, env, where)

    async def keep(self, message: Message, envelope: Envelope, where: outbox.Where) -> str:
        """Leave an emitted message in the outbox (a fake context records it instead);
        returns its message id."""
        row = outbox.row(message, envelope, **where)
        if self.outbox_rows is not None:
            self.outbox_rows.append(row)
        else:
            await outbox.add_rows(self.conn, [row])
        return envelope.message_id

    async def emit_latest(
        self,
        key: str,
        make: Callable[[], Awaitable[Message]],
        *,
        correlation_id: str | None = None,
    ) -> None:
        """Emit the message `make()` returns, for an event whose consumers need only its
        latest (an account's balance): alone, now; in a batch, once for all the batch's
        requests of the same `key`, made at the batch's end (so from the figures the batch
        leaves), with the marks of the last message that asked for it, after the batch's
        other messages. `make` is called once per emission."""
        if self.latest is None:
            await self.emit(await make(), correlation_id=correlation_id)
            return

        async def emit() -> None:
            await self.emit(await make(), correlation_id=correlation_id)

        self.latest.pop(key, None)  # to the end: emitted after what was requested before it
        self.latest[key] = emit


async def emit_latest_of(latest: dict[str, Callable[[], Awaitable[object]]]) -> None:
    """Emit a batch's `emit_latest` events, each key once, before its outbox rows are
    written."""
    for emit in latest.values():
        await emit()


Handler = Callable[[HandlerContext, Any], Awaitable[Message | None]]
Preparation = Callable[[Any], Awaitable[Any]]


def outside_transaction(handler: Handler, step: Preparation) -> None:
    """Have `step(message)` run before `handler`'s transaction opens, holding no database
    connection, its result in `ctx.prepared`. For slow work that must not keep a pool
    connection and a transaction open. It runs again for a redelivered message (the inbox
    is checked only inside the transaction), so it must change nothing."""
    handler.before_transaction = step  # type: ignore[attr-defined]


# `prepare` not run yet for a delivery (its result may be None).
NOT_PREPARED: Any = object()


async def prepare(handler: Handler, message: Message) -> Any:
    step = getattr(handler, "before_transaction", None)
    return None if step is None else await step(message)


# Makes a service's store over one open transaction.
StoreFactory = Callable[[asyncpg.Connection], Any]


async def apply_in_transaction(
    pool: asyncpg.Pool,
    producer: str,
    handler: Handler,
    message: Message,
    *,
    user_id: str | None = None,
    store: StoreFactory | None = None,
) -> Message | None:
    """Run one handler as the Dispatcher would for one delivery, minus the broker and
    the inbox: in a transaction of its own, its emits left in the outbox table. For tests
    and benchmarks of a service's handlers against its database. `user_id`: the AMQP
    user_id the delivery would carry (the broker-checked sender)."""
    prepared = await prepare(handler, message)
    async with pool.acquire() as conn, checked_transaction(conn):
        env = Envelope(message.message_type, message.schema_version, producer)
        ctx = HandlerContext(conn, env, producer, None, structlog.get_logger(producer))  # type: ignore[arg-type]
        ctx.user_id = user_id
        ctx.store = store(conn) if store else None
        ctx.prepared = prepared
        reply = await handler(ctx, message)
    for effect in ctx.effects:
        await effect()
    return reply


# How soon a reply that could not be sent (the publisher reconnecting) is sent again, at
# first and at most.
REPLY_RETRY_FIRST = 0.25
REPLY_RETRY_MAX = 5.0


def _may_reply(raw: AbstractIncomingMessage, sender: str | None) -> bool:
    """Whether to answer a delivery at its `reply_to`. Only requests (commands and queries,
    sent through `platen.commands`) are answered, and only at a key of their own sender's:
    `reply.<the request's user_id>.`, the user the broker checked. So no request (nor
    anything a desktop sends) chooses another identity's queue for the server to write
    into, and a reply that holds a secret reaches only who asked for it."""
    if not raw.reply_to or raw.exchange != COMMANDS:
        return False
    if sender and raw.reply_to.startswith(reply_prefix(sender)):
        return True
    log.warning(
        "request not answered: its reply_to is not its sender's",
        reply_to=raw.reply_to[:300],
        user_id=sender,
    )
    return False


def _channel_closed(raw: AbstractIncomingMessage) -> bool:
    channel = getattr(raw, "channel", None)
    return bool(getattr(channel, "is_closed", False))


def decode_delivery(raw: AbstractIncomingMessage) -> tuple[Envelope, Message] | ContractError:
    """The delivery's envelope and body, or why it does not fit the contract."""
    try:
        return from_amqp(raw)
    except ContractError as exc:
        return exc


class Dispatcher:
    """Handles the deliveries of one queue, choosing the handler by message type."""

    def __init__(
        self,
        *,
        queue: str,
        producer: str,
        pool: asyncpg.Pool,
        publisher: Publisher,
        relay: OutboxRelay,
        handlers: dict[type[Message], Handler],
        store: StoreFactory | None = None,
        subscriptions: Subscriptions | None = None,
        queries: Iterable[type[Message]] = (),
        without_database: Iterable[type[Message]] = (),
        senders: SenderCheck | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.queue = queue
        # What became of each delivery, counted (platen.operations.metrics).
        self.metrics = metrics or Metrics()
        # Who each restricted command is accepted from (`senders`), by its AMQP user_id.
        self.senders = senders
        # Questions that change nothing: answered in a read-only transaction and never
        # recorded in the inbox (a redelivery is simply answered again).
        self.queries = {m.message_type for m in queries}
        # Handlers that only speak to the broker (a service's dead letters): no database
        # connection or transaction is held open across their broker I/O.
        self.without_database = {m.message_type for m in without_database}
        self.store = store
        self.subscriptions = subscriptions
        self.producer = producer
        self.pool = pool
        self.publisher = publisher
        self.relay = relay
        self.handlers = {model.message_type: fn for model, fn in handlers.items()}
        # How long a failed delivery waits before it goes back to the queue.
        self.back_off = BACK_OFF
        # Who returns failed deliveries when the caller must not wait through their
        # back-off (a Batcher: its one worker would stall the whole queue behind one
        # failing message). None: `give_back` waits, which holds up only its own delivery
        # (aio-pika gives every delivery its own task).
        self.return_later: Callable[[AbstractIncomingMessage], None] | None = None

    async def __call__(self, raw: AbstractIncomingMessage, *, prepared: Any = NOT_PREPARED) -> None:
        """Process one delivery and settle it (ack or nack). Never raises. `prepared`: what
        its handler's `outside_transaction` step returned already (the batch path ran it)."""
        started = time.monotonic()
        with structlog.contextvars.bound_contextvars(
            message_id=raw.message_id, message_type=raw.type, queue=self.queue
        ):
            try:
                decoded = decode_delivery(raw)
            except Exception as exc:
                await self.give_back(raw, exc)
                return
            # Bound once the body is known: a job message names its job in its body, and
            # its correlation id may be missing (or name an account, for balance events).
            message = None if isinstance(decoded, ContractError) else decoded[1]
            subject = correlation_fields(raw.correlation_id, raw.type, message)
            marks = of_delivery(raw)
            try:
                with structlog.contextvars.bound_contextvars(**subject, **marks):
                    await self._hold_through_outages(
                        raw, lambda: self._process(raw, decoded, marks, started, prepared)
                    )
            finally:
                # A handler's own marks (ctx.mark) end with its delivery.
                structlog.contextvars.unbind_contextvars(*MARK_KEYS)

    async def _hold_through_outages(
        self, raw: AbstractIncomingMessage, process: Callable[[], Awaitable[None]]
    ) -> None:
        """Process the delivery (`process`); while the database is unreachable, keep it and
        try again once the database answers, however long that takes. The delivery never
        goes back to the queue for an outage: a returned message counts one delivery against
        its limit, so outages would dead-letter good messages."""
        while True:
            try:
                await process()
                return
            except Exception as exc:
                if not is_outage(exc):
                    await self.give_back(raw, exc)
                    return
                log.warning("database unavailable; holding the message", error=repr(exc))
                held = self.metrics.held.labels(self.queue)
                held.inc()
                try:
                    await self._wait_for_database()
                finally:
                    held.dec()
                if _channel_closed(raw):
                    # The broker went too (or the error was the broker's): this delivery
                    # can no longer be settled, and the broker delivers it again.
                    return

    async def give_back(self, raw: AbstractIncomingMessage, exc: Exception) -> None:
        """Return a delivery that failed for a reason other than its content; on its last
        allowed delivery, dead-letter it with the error instead."""
        self.metrics.delivery_failed(self.queue, raw.type)
        failures = (raw.headers or {}).get("x-delivery-count", 0)
        if isinstance(failures, int) and failures >= DELIVERY_LIMIT:
            # Returned once more, the broker would dead-letter it with only
            # `x-death: delivery_limit`; done here, the reason goes with it.
            log.exception("message handling failed on its last allowed delivery")
            try:
                await self._dead_letter(
                    raw, f"failed on {failures + 1} deliveries; the last error: {exc!r}"
                )
                return
            except Exception:
                log.exception("dead-lettering failed; returning the message to the queue")
        log.exception("message handling failed; returning it to the queue")
        if self.return_later is not None:
            self.return_later(raw)
            return
        await self.return_after_back_off(raw)

    async def return_after_back_off(self, raw: AbstractIncomingMessage) -> None:
        """Wait `back_off`, then return the delivery to the queue: a message that fails at
        once every time must not loop through the broker as fast as it can."""
        await asyncio.sleep(self.back_off)
        try:
            # reject, not nack: only reject counts towards the delivery limit on
            # every RabbitMQ version (4.3 stopped counting nacks).
            await raw.reject(requeue=True)
        except Exception:
            log.exception("reject failed; the broker will redeliver on reconnect")

    async def _wait_for_database(self) -> None:
        """Until the database answers again (or fails for a reason other than an outage)."""
        delay = 0.5
        waited = 0.0
        while True:
            await asyncio.sleep(delay)
            waited += delay
            try:
                async with self.pool.acquire() as conn:
                    await conn.fetchval("SELECT 1")
                return
            except Exception as exc:
                if not is_outage(exc):
                    return
                if waited // 60 != (waited - delay) // 60:
                    log.warning("database still unavailable", seconds=round(waited))
            delay = min(delay * 2, 10.0)

    async def _process(
        self,
        raw: AbstractIncomingMessage,
        decoded: tuple[Envelope, Message] | ContractError,
        marks: dict[str, str],
        started: float,
        prepared: Any = NOT_PREPARED,
    ) -> None:
        if isinstance(decoded, ContractError):
            await self._dead_letter(raw, str(decoded))
            return
        envelope, message = decoded
        handler = self.handlers.get(envelope.message_type)
        if handler is None:
            await self._dead_letter(raw, f"{self.queue} has no handler for {envelope.message_type}")
            return
        refused = self.refused_sender(raw, message)
        if refused is not None:
            log.warning("command refused: not from a sender allowed to send it", reason=refused)
            await self._dead_letter(raw, refused)
            return
        # A handler may turn a delivery away before any work is done for it (a desktop
        # flooding answers): no transaction, no inbox row, only the ack. Its `admit` says
        # so, and logs why; everything else about the delivery is the handler's to decide.
        admit = getattr(handler, "admit", None)
        if admit is not None and not admit(raw.routing_key, message):
            await raw.ack()
            self.metrics.delivery_dropped(self.queue, raw.type)
            return

        if prepared is NOT_PREPARED:
            prepared = await prepare(handler, message)
        try:
            reply, effects = await self._apply(raw, envelope, message, handler, marks, prepared)
        except Rejected as exc:
            await self._dead_letter(raw, str(exc))
            return
        for effect in effects:
            await effect()
        answering = reply is not None and _may_reply(raw, self._sender(raw))
        if answering and not await self._send_reply(raw, reply):
            return  # its channel has gone: the broker delivers it again, to be answered
        await raw.ack()
        self.metrics.delivery_handled(self.queue, raw.type, time.monotonic() - started)

    def refused_sender(self, raw: AbstractIncomingMessage, message: Message) -> str | None:
        """Why this command may not come from whoever sent it (None: it may)."""
        if self.senders is None or self.subscriptions is None:
            return None
        allowed = self.subscriptions.senders.get(type(message))
        return self.senders.refusal(message.message_type, allowed, self._sender(raw))

    def _sender(self, raw: AbstractIncomingMessage) -> str | None:
        """Who sent this delivery, as the broker proved it (senders.sender_of)."""
        return sender_of(raw.user_id, raw.headers, self.senders.own_user if self.senders else None)

    async def _apply(
        self,
        raw: AbstractIncomingMessage,
        envelope: Envelope,
        message: Message,
        handler: Handler,
        marks: dict[str, str],
        prepared: Any = None,
    ) -> tuple[Message | None, list[Callable[[], Awaitable[object]]]]:
        def context(conn: asyncpg.Connection | None) -> HandlerContext:
            return self.context(conn, raw, envelope, marks, prepared)

        if envelope.message_type in self.without_database:
            ctx = context(None)
            return await handler(ctx, message), ctx.effects
        async with self.pool.acquire() as conn:
            if envelope.message_type in self.queries:
                async with conn.transaction(readonly=True):
                    ctx = context(conn)
                    return await handler(ctx, message), ctx.effects
            async with checked_transaction(conn):
                # The messages the handler emits are written together, one statement before
                # the commit, instead of a round trip each (as a batch's are).
                ctx = context(conn)
                ctx.outbox_rows = []
                reply, effects = await self.apply_once(conn, ctx, envelope, message, handler)
                if ctx.outbox_rows:
                    committed = await outbox.add_rows(conn, ctx.outbox_rows)
                    # The last effect: once committed, and after the handler's own
                    # effects, its messages go out from memory (the relay's fast lane).
                    effects = [*effects, functools.partial(self.relay.hand_over, committed)]
                return reply, effects

    def context(
        self,
        conn: asyncpg.Connection | None,
        raw: AbstractIncomingMessage,
        envelope: Envelope,
        marks: dict[str, str],
        prepared: Any = None,
    ) -> HandlerContext:
        """What the handler of this delivery is given, over `conn`'s open transaction."""
        return HandlerContext(
            conn,  # type: ignore[arg-type]
            envelope,
            self.producer,
            self.publisher,
            log,
            routing_key=raw.routing_key or "",
            user_id=self._sender(raw),
            store=self.store(conn) if self.store and conn else None,
            marks=dict(marks),
            subscriptions=self.subscriptions,
            prepared=prepared,
        )

    async def apply_once(
        self,
        conn: asyncpg.Connection,
        ctx: HandlerContext,
        envelope: Envelope,
        message: Message,
        handler: Handler,
        *,
        claimed: bool | None = None,
    ) -> tuple[Message | None, list[Callable[[], Awaitable[object]]]]:
        """Apply a delivery once: its id claimed in the inbox in the effect's transaction,
        its reply stored there for a redelivery. `claimed`: whether the caller claimed it
        already in this transaction (a batch claims all of its ids in one statement)."""
        if claimed is None:
            claimed = await inbox.claim(conn, self.queue, envelope.message_id)
        if not claimed:
            log.info("duplicate delivery skipped")
            stored = await inbox.stored_reply(conn, self.queue, envelope.message_id)
            return (decode(stored[0], stored[1], stored[2]) if stored else None), []
        reply = await handler(ctx, message)
        # A reply that holds a secret (a new password) is sent once and never stored:
        # a redelivery then goes unanswered, and the requester asks again.
        if reply is not None and not getattr(reply, "holds_secret", False):
            await inbox.store_reply(
                conn,
                self.queue,
                envelope.message_id,
                reply.message_type,
                reply.schema_version,
                encode(reply),
            )
        return reply, ctx.effects

    async def _send_reply(self, raw: AbstractIncomingMessage, reply: Message) -> bool:
        """Send `reply` to the request's `reply_to` before the request is acknowledged, and
        again until the broker confirms it: the effect is committed, and the requester
        may never ask again (notification waits on the ledger's answer to a user's
        "print"), so a reply lost with the publisher's connection (a broker restart)
        would leave it waiting for ever. False: the delivery's own channel went meanwhile,
        so it cannot be acknowledged; the broker delivers it again, and its stored reply
        answers it then."""
        env = envelope_for(reply, self.producer, raw.message_id)
        msg = build(
            body=encode(reply),
            message_type=env.message_type,
            schema_version=env.schema_version,
            producer=self.producer,
            message_id=env.message_id,
            correlation_id=raw.message_id,
            occurred_at=env.occurred_at,
        )
        delay = REPLY_RETRY_FIRST
        while True:
            try:
                # Mandatory: a reply no queue is bound for (its requester has gone) is
                # returned and said here, not dropped unseen.
                await self.publisher.publish(REPLIES, raw.reply_to or "", msg)
                return True
            except Exception as exc:
                if outbox.is_refusal(exc):
                    # Its requester has gone (or may not be answered there): sending again
                    # would be refused again. A retry of the request gets this reply.
                    log.warning("reply not delivered", error=repr(exc))
                    return True
                if _channel_closed(raw):
                    log.warning("reply not sent; the request will be delivered again")
                    return False
                log.warning("reply not sent yet; sending it again", error=repr(exc))
            await asyncio.sleep(delay)
            delay = min(delay * 2, REPLY_RETRY_MAX)

    async def _dead_letter(self, raw: AbstractIncomingMessage, reason: str) -> None:
        log.error("message dead-lettered", reason=reason)
        # The copy goes out as this service; it names who first sent the message, so a
        # replay can still be checked by its sender (senders.FIRST_SENDER).
        copy = copy_of(
            raw,
            self.senders.own_user if self.senders else None,
            body=redaction.for_dead_letter(raw.body, raw.exchange),
            headers={HEADER_ERROR: reason[:1000], HEADER_QUEUE: self.queue},
        )
        await self.publisher.publish(DEAD_LETTERS, self.queue, copy)
        if _may_reply(raw, self._sender(raw)) and not await self._send_reply(
            raw, ErrorReply(error=reason)
        ):
            return  # delivered again: dead-lettered again (a second copy), and answered
        await raw.ack()
        self.metrics.delivery_dead_lettered(self.queue, raw.type)
