"""Deliveries of one queue handled in batches: several messages, one transaction.

For a queue whose service opts in (`Subscriptions(batched=...)`): a single worker takes the
deliveries that are ready (up to the channel's prefetch, waiting `linger` for more once the
first has come: by default only a turn of the event loop), in the order the broker
delivered them, and applies them in ONE database transaction, each still claiming its own
inbox row, so a message delivered twice (in one batch or in two) is applied once. After the
commit it runs each message's effects, wakes the outbox relay and acks them all. What is
saved is one transaction, one commit and one acquisition of each row lock per batch instead
of per message; a busy row (one shared account every job charges) is then locked once for
many jobs.

Anything unusual goes the one-at-a-time way (`Dispatcher`), exactly as without batching:
- a delivery that does not decode, has no handler, is a query, needs no database, comes
  from a sender not allowed to send it, may be turned away (`admit`), or expects a reply,
  is handled alone, in its place in the order;
- if any message of a batch fails (its handler raises, `Rejected` included, or the
  database goes), the transaction rolls back, nothing of the batch is kept, and its messages
  are handled again one at a time: a poison message is returned or dead-lettered exactly as
  it would be alone, and the others are applied.
Batches of a queue follow each other (one worker), so the queue's order is kept. A failed
delivery waits out its back-off before it goes back to the queue in the background, not in
the worker: one poison message does not hold up the healthy ones behind it.

Round trips saved besides the transaction: the batch's inbox claims are one statement, its
outbox rows one more (written before the commit), and its messages share one store, which
may put off its writes until the batch ends (`defer_writes`, then `flush` before the
outbox rows and the commit) to write them set-based; if they are refused then, the batch
rolls back and is handled one message at a time, as for any other failure. An event whose
consumers need only the latest (`ctx.emit_latest`: an account's balance) is emitted once
per key per batch, at its end, instead of once per message.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import asyncpg
import structlog
from aio_pika.abc import AbstractIncomingMessage

from platen.db import checked_transaction
from platen.events.base import Envelope, Message
from platen.events.registry import ContractError
from platen.messaging import inbox, outbox
from platen.messaging.handling import (
    Dispatcher,
    Handler,
    HandlerContext,
    StoreFactory,
    decode_delivery,
    emit_latest_of,
    prepare,
)
from platen.messaging.logs import correlation_fields
from platen.messaging.marks import KNOWN as MARK_KEYS
from platen.messaging.marks import of_delivery

log = structlog.get_logger(__name__)

# How long the worker waits, once a delivery is ready, for more to join its batch: no time,
# only one turn of the event loop (deliveries read from the broker together still join).
# Under load a batch is what piled up while the one before it was applied, so batches grow
# with the load by themselves; a timed wait only held up the lone delivery of a quiet
# moment (at a campus's rates, nearly every one). Side by side (bench/README.md, session
# 30), none against 2 ms: the ledger's hops up to 4 ms shorter at their p50 at a steady 20
# jobs/s; in a burst 2 to 4 % more transactions, its CPU and rate the same within noise.
LINGER = 0.0


@dataclass
class _Item:
    """One delivery of a batch, decoded and prepared, with what its handling needs."""

    raw: AbstractIncomingMessage
    envelope: Envelope
    message: Message
    handler: Handler
    marks: dict[str, str]
    prepared: Any
    started: float

    def log_fields(self) -> dict[str, Any]:
        return {
            "message_id": self.raw.message_id,
            "message_type": self.raw.type,
            **correlation_fields(self.raw.correlation_id, self.raw.type, self.message),
            **self.marks,
        }


# Takes, at the start of a batch's transaction, the locks the handler would take message
# by message: (the batch's store, the batch's messages for this handler).
BatchLocks = Callable[[Any, list[Message]], Awaitable[None]]


def locks_for_batch(handler: Handler, step: BatchLocks) -> None:
    """Have `step(store, messages)` run first in a batch's transaction, before any of its
    messages is handled: the handler's locks for the whole batch, each taken once and in
    the service's one lock order. Message by message, a batch would take its locks in
    arrival order and hold them all to its commit, and two transactions taking the same
    locks in different orders deadlock. (A deadlock still loses nothing: the batch rolls
    back and is handled one message at a time; it only costs time.)"""
    handler.batch_locks = step  # type: ignore[attr-defined]


async def take_batch_locks(store: Any, steps: list[tuple[Handler, Message]]) -> None:
    """Each handler's batch locks over its messages of the batch, handlers in the order
    they first appear."""
    by_handler: dict[Any, list[Message]] = {}
    for handler, message in steps:
        if getattr(handler, "batch_locks", None) is not None:
            by_handler.setdefault(handler, []).append(message)
    for handler, messages in by_handler.items():
        await handler.batch_locks(store, messages)  # type: ignore[attr-defined]


def defer_writes(store: Any) -> None:
    """Let the batch's store put off its writes until `flush_writes` (a store that can:
    the ledger's writes a batch's holds and charges together, in a statement each)."""
    if (defer := getattr(store, "defer_writes", None)) is not None:
        defer()


async def flush_writes(store: Any) -> None:
    """Write what the batch's store put off: its last statements before the commit."""
    if (flush := getattr(store, "flush", None)) is not None:
        await flush()


def _settle(settled: asyncio.Future[None], *_: Any) -> None:
    if not settled.done():
        settled.set_result(None)


class Batcher:
    """The aio-pika consumer callback of one batched queue, in front of its Dispatcher.

    Each delivery waits (its callback does not return) until it is settled, so whoever
    counts deliveries in flight (FastStream's graceful shutdown) still sees it. `run` is the
    worker: start it once, for the life of the consumer."""

    def __init__(self, dispatcher: Dispatcher, *, size: int, linger: float = LINGER) -> None:
        if size < 1:
            raise ValueError("a batch holds at least one delivery")
        self.dispatcher = dispatcher
        self.size = size
        self.linger = linger
        self._ready: list[tuple[AbstractIncomingMessage, asyncio.Future[None]]] = []
        self._arrived = asyncio.Event()
        # Failed deliveries waiting out their back-off before they go back to the queue,
        # by delivery: the worker goes on with the others meanwhile.
        self._returning: dict[int, asyncio.Task[None]] = {}
        # All of them, until each is back in the queue (and the tasks kept referenced).
        self.in_back_off: set[asyncio.Task[None]] = set()
        dispatcher.return_later = self._return_later

    def _return_later(self, raw: AbstractIncomingMessage) -> None:
        """Return a failed delivery after its back-off, in the background: one poison
        message must not hold up every healthy one behind it in the queue."""
        task = asyncio.get_running_loop().create_task(self.dispatcher.return_after_back_off(raw))
        self._returning[id(raw)] = task
        self.in_back_off.add(task)
        task.add_done_callback(self.in_back_off.discard)

    async def __call__(self, raw: AbstractIncomingMessage) -> None:
        settled = asyncio.get_running_loop().create_future()
        self._ready.append((raw, settled))
        self._arrived.set()
        await settled

    async def run(self) -> None:
        """Take the ready deliveries in batches and handle them, one batch after another."""
        while True:
            await self._arrived.wait()
            if len(self._ready) < self.size:
                await asyncio.sleep(self.linger)
            # In the broker's order: aio-pika hands each delivery to its own task, and
            # those need not reach `__call__` in the order they were delivered.
            self._ready.sort(key=lambda pair: pair[0].delivery_tag or 0)
            taken, self._ready = self._ready[: self.size], self._ready[self.size :]
            if not self._ready:
                self._arrived.clear()
            try:
                await self.handle([raw for raw, _ in taken])
            except Exception:
                # `handle` settles every delivery itself; this is a bug, and the broker
                # redelivers whatever was left unsettled when the channel closes.
                log.exception("batch handling failed", queue=self.dispatcher.queue)
            finally:
                for raw, settled in taken:
                    returning = self._returning.pop(id(raw), None)
                    if returning is not None and not returning.done():
                        # Settled once it is back in the queue, not before: whoever counts
                        # deliveries in flight (a graceful shutdown) waits for it.
                        returning.add_done_callback(partial(_settle, settled))
                    else:
                        _settle(settled)

    async def handle(self, raws: list[AbstractIncomingMessage]) -> None:
        """Handle these deliveries, in this order, batching those that may be batched."""
        run: list[_Item] = []
        for raw in raws:
            item = await self._batchable(raw)
            if item is not None:
                run.append(item)
                continue
            await self._apply(run)
            run = []
            await self.dispatcher(raw)
        await self._apply(run)

    async def _batchable(self, raw: AbstractIncomingMessage) -> _Item | None:
        """The delivery ready for a batch, or None: it goes alone (the module's list)."""
        d = self.dispatcher
        started = time.monotonic()
        try:
            decoded = decode_delivery(raw)
        except Exception:
            return None
        if isinstance(decoded, ContractError):
            return None
        envelope, message = decoded
        handler = d.handlers.get(envelope.message_type)
        if (
            handler is None
            or raw.reply_to
            or envelope.message_type in d.queries
            or envelope.message_type in d.without_database
            or getattr(handler, "admit", None) is not None
            or d.refused_sender(raw, message) is not None
        ):
            return None
        try:
            prepared = await prepare(handler, message)
        except Exception:
            return None  # alone, its failure is handled (and retried) as ever
        return _Item(raw, envelope, message, handler, of_delivery(raw), prepared, started)

    async def _apply(self, items: list[_Item]) -> None:
        """Apply these deliveries in one transaction, then settle each; on any failure,
        hand each to the Dispatcher alone instead."""
        d = self.dispatcher
        if not items:
            return
        if len(items) == 1:  # alone: no second try if it fails
            await d(items[0].raw, prepared=items[0].prepared)
            return
        try:
            results, committed = await self._transaction(items)
        except Exception as exc:
            log.warning(
                "batch rolled back; handling its messages one at a time",
                queue=d.queue,
                size=len(items),
                error=repr(exc),
            )
            for item in items:
                await d(item.raw, prepared=item.prepared)
            return
        # As alone: each delivery's effects, the rows handed to the relay, then the acks.
        done = []
        for item, effects in zip(items, results, strict=True):
            with structlog.contextvars.bound_contextvars(queue=d.queue, **item.log_fields()):
                if await self._effects(item, effects):
                    done.append(item)
        await d.relay.hand_over(committed)
        for item in done:
            with structlog.contextvars.bound_contextvars(queue=d.queue, **item.log_fields()):
                await self._ack(item)

    async def _transaction(
        self, items: list[_Item]
    ) -> tuple[list[list[Any]], list[tuple[int, tuple]]]:
        """Each delivery's inbox claim and handler, all in one transaction; returns the
        after-commit effects of each, and the outbox rows written (with their ids). Raises
        (and so rolls back) if any handler does."""
        d = self.dispatcher
        results = []
        rows: list[tuple] = []
        latest: dict[str, Any] = {}
        async with d.pool.acquire() as conn, checked_transaction(conn):
            # One store for the whole batch: what it has locked and read once, it need not
            # lock or read again for the next message (the service's store decides what it
            # may keep; a store without state is simply shared).
            store = d.store(conn) if d.store else None
            defer_writes(store)
            await take_batch_locks(store, [(item.handler, item.message) for item in items])
            unclaimed = await inbox.claim_many(
                conn, d.queue, [item.envelope.message_id for item in items]
            )
            for item in items:
                fields = item.log_fields()
                claimed = item.envelope.message_id in unclaimed
                unclaimed.discard(item.envelope.message_id)  # a second copy is a duplicate
                try:
                    with structlog.contextvars.bound_contextvars(queue=d.queue, **fields):
                        ctx = d.context(conn, item.raw, item.envelope, item.marks, item.prepared)
                        ctx.store = store
                        ctx.outbox_rows = rows
                        ctx.latest = latest
                        _, effects = await d.apply_once(
                            conn, ctx, item.envelope, item.message, item.handler, claimed=claimed
                        )
                finally:
                    structlog.contextvars.unbind_contextvars(*MARK_KEYS)
                results.append(effects)
            await emit_latest_of(latest)
            await flush_writes(store)
            committed = await outbox.add_rows(conn, rows)
        return results, committed

    async def _effects(self, item: _Item, effects: list[Any]) -> bool:
        """Run the delivery's after-commit effects; False if one failed, and the delivery
        was given back (its redelivery is skipped by the inbox), as it would be alone."""
        try:
            for effect in effects:
                await effect()
        except Exception as exc:
            await self.dispatcher.give_back(item.raw, exc)
            return False
        return True

    async def _ack(self, item: _Item) -> None:
        d = self.dispatcher
        try:
            await item.raw.ack()
        except Exception as exc:
            # The channel has gone: the broker delivers it again, and the inbox skips it.
            log.warning("ack failed; the message will be redelivered", error=repr(exc))
            return
        d.metrics.delivery_handled(d.queue, item.raw.type, time.monotonic() - item.started)


async def apply_batch_in_transaction(
    pool: asyncpg.Pool,
    producer: str,
    steps: list[tuple[Handler, Message]],
    *,
    store: StoreFactory | None = None,
) -> list[Message | None]:
    """Run several handlers as a Batcher would for one batch, minus the broker and the
    inbox: in order, in ONE transaction, their emits left in the outbox table; if one
    raises, nothing of the batch is kept. The batch counterpart of `apply_in_transaction`,
    for tests and benchmarks of a service's handlers against its database."""
    prepared = [await prepare(handler, message) for handler, message in steps]
    replies = []
    contexts = []
    rows: list[tuple] = []
    latest: dict[str, Any] = {}
    async with pool.acquire() as conn, checked_transaction(conn):
        shared = store(conn) if store else None
        defer_writes(shared)
        await take_batch_locks(shared, steps)
        for (handler, message), ready in zip(steps, prepared, strict=True):
            env = Envelope(message.message_type, message.schema_version, producer)
            ctx = HandlerContext(conn, env, producer, None, structlog.get_logger(producer))  # type: ignore[arg-type]
            ctx.store = shared
            ctx.prepared = ready
            ctx.outbox_rows = rows
            ctx.latest = latest
            replies.append(await handler(ctx, message))
            contexts.append(ctx)
        await emit_latest_of(latest)
        await flush_writes(shared)
        await outbox.add_rows(conn, rows)
    for ctx in contexts:
        for effect in ctx.effects:
            await effect()
    return replies
