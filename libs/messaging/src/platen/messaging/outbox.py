"""The transactional outbox: record messages with the state change, publish them after.

`add` writes a row inside the caller's transaction (`add_rows` several, for a batch).
Once that transaction has committed, a delivery's rows are handed to the relay
(`OutboxRelay.hand_over`), which publishes them from memory (many confirms awaited at
once) and deletes them in one statement: the fast lane. The relay's sweep (`flush_once`)
reads the table for everything else, locking the rows it publishes and deleting them in
the same transaction: at once when asked (`wake`, a failure, the start), otherwise every
`poll_interval` for rows old enough that no replica's fast lane still holds them. A crash
between publishing and deleting publishes a row again: consumers de-duplicate on the
message id, so that is harmless.

A row is published however long the broker is away: a publish that fails because the
broker is unreachable, blocked (a memory or disk alarm), frozen or busy (a nack) costs the
row nothing, and the relay retries with backoff for ever. Only a *refusal* (the broker
returned the message as unroutable, or refused the exchange or the right to publish) is
counted; after MAX_ATTEMPTS refusals the row is left for an administrator, who sees it,
with the age of the oldest unpublished row, in `platenctl status` (see `backlog`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from typing import Any, Required, TypedDict, Unpack

import asyncpg
import structlog
from aiormq.exceptions import (
    ChannelAccessRefused,
    ChannelNotFoundEntity,
    ChannelPreconditionFailed,
    PublishError,
)

from platen.events.base import Envelope, Message
from platen.events.registry import encode
from platen.events.routing import DESKTOP, login_of_key, reply_key
from platen.messaging.codec import build
from platen.messaging.logs import correlation_fields
from platen.messaging.publisher import Publisher
from platen.operations.metrics import Metrics

log = structlog.get_logger(__name__)

# After this many refusals a row is left in the table for an administrator to look at.
MAX_ATTEMPTS = 50

# What the broker answers when it will not take a message however often it is asked,
# until an administrator changes something: returned as unroutable (`mandatory`), no
# such exchange, no right to publish there, or a precondition failed.
_REFUSALS = (PublishError, ChannelAccessRefused, ChannelNotFoundEntity, ChannelPreconditionFailed)


def is_refusal(error: BaseException) -> bool:
    """Whether a failed publish was refused, rather than failed for a while (the broker
    away, blocked or busy), which must never count against the row."""
    return isinstance(error, _REFUSALS)


async def backlog(conn: asyncpg.Connection) -> tuple[int, float | None, int]:
    """(rows waiting, age in seconds of the oldest one or None, rows given up after
    MAX_ATTEMPTS refusals): what `platenctl status` shows for each service."""
    row = await conn.fetchrow(
        """SELECT count(*) FILTER (WHERE attempts < $1) AS waiting,
                  extract(epoch FROM now() - min(written_at)) AS oldest,
                  count(*) FILTER (WHERE attempts >= $1) AS refused
           FROM outbox""",
        MAX_ATTEMPTS,
    )
    oldest = row["oldest"]
    return row["waiting"], (float(oldest) if oldest is not None else None), row["refused"]


# How old a row must be for the timed sweep, which finds rows nobody handed over or asked
# for (their process stopped): younger ones are still in some replica's fast lane.
SETTLED = 2.0


class PublishFailed(RuntimeError):
    """Nothing in the batch could be published (the broker refused every row)."""


# The table's columns in the order of a `row`.
_COLUMNS = """message_id, exchange, routing_key, message_type, schema_version, correlation_id,
              body, expiration_ms, created_at, reply_to, marks"""
_NAMES = [name.strip() for name in _COLUMNS.split(",")]
_INSERT = f"""INSERT INTO outbox ({_COLUMNS})
              VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id"""
# Several rows in one statement, in their order (so their ids, which the relay publishes
# by, follow it): one execution for a batch's rows, not one per row.
_INSERT_MANY = f"""INSERT INTO outbox ({_COLUMNS})
           SELECT {_COLUMNS}
             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[],
                         $6::text[], $7::bytea[], $8::int[], $9::timestamptz[], $10::text[],
                         $11::text[]) WITH ORDINALITY AS r ({_COLUMNS}, n)
            ORDER BY r.n
        RETURNING id"""

# The sweep's SELECT: the oldest rows not given up on, at least $3 seconds old by the
# database's clock (`written_at`; `created_at` is the emitting service's), locked;
# `_SWEEP_BUT` leaves out the rows whose ids are in $4 as well.
_SWEEP_ROWS = f"""SELECT id, attempts, {_COLUMNS}
               FROM outbox
              WHERE attempts < $2 AND written_at <= now() - make_interval(secs => $3)"""
_SWEEP_ORDER = "\n              ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED"
_SWEEP = _SWEEP_ROWS + _SWEEP_ORDER
_SWEEP_BUT = _SWEEP_ROWS + " AND id <> ALL($4::bigint[])" + _SWEEP_ORDER


class Where(TypedDict, total=False):
    """Where a row goes, and how: `row`'s and `add`'s keywords, written once for both."""

    exchange: Required[str]
    routing_key: Required[str]
    expiration_ms: int | None
    reply_to: str | None
    marks: str | None


def row(message: Message, envelope: Envelope, **where: Unpack[Where]) -> tuple:
    """The outbox row of one message, for `add_rows`."""
    return (
        envelope.message_id,
        where["exchange"],
        where["routing_key"],
        envelope.message_type,
        envelope.schema_version,
        envelope.correlation_id,
        encode(message),
        where.get("expiration_ms"),
        envelope.occurred_at,
        where.get("reply_to"),
        where.get("marks"),
    )


async def add(
    conn: asyncpg.Connection, message: Message, envelope: Envelope, **where: Unpack[Where]
) -> None:
    """One message's row, in the caller's transaction."""
    await add_rows(conn, [row(message, envelope, **where)])


async def add_rows(conn: asyncpg.Connection, rows: list[tuple]) -> list[tuple[int, tuple]]:
    """Several rows (`row`) in the caller's transaction, in their order, in one statement;
    each with the id it was given, for `OutboxRelay.hand_over` once the transaction has
    committed."""
    if len(rows) == 1:
        return [(await conn.fetchval(_INSERT, *rows[0]), rows[0])]
    if not rows:
        return []
    # Ids are drawn in the order the rows are inserted, which is theirs: sorted, they pair.
    ids = sorted(
        r["id"] for r in await conn.fetch(_INSERT_MANY, *map(list, zip(*rows, strict=True)))
    )
    return list(zip(ids, rows, strict=True))


class OutboxRelay:
    def __init__(
        self,
        pool: asyncpg.Pool,
        publisher: Publisher,
        producer: str,
        *,
        batch_size: int = 200,
        poll_interval: float = 1.0,
        user_id: str | None = None,
        max_backoff: float = 5.0,
        metrics: Metrics | None = None,
    ) -> None:
        self._pool = pool
        self._metrics = metrics or Metrics()
        self._max_backoff = max_backoff
        # Set on every message as its AMQP user_id: the broker checks it is the user this
        # connection signed in as, so consumers may trust it to name the sender.
        self._user_id = user_id
        self._publisher = publisher
        self._producer = producer
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._wakeup = asyncio.Event()
        # Rows committed in this process and handed over to go out from memory (the fast
        # lane), with their ids, oldest first.
        self._fresh: list[tuple[int, tuple]] = []
        # Whether the table must be read (`flush_once`, the sweep) at the next turn, and
        # when it last was: rows not handed over, and any the fast lane could not send.
        self._sweep_asked = True
        self._swept_at = float("-inf")

    def wake(self) -> None:
        """Called after a transaction that added rows commits, so they leave at once: the
        table is read for them. (A delivery's rows are handed over instead.)"""
        self._sweep_asked = True
        self._wakeup.set()

    async def hand_over(self, committed: list[tuple[int, tuple]]) -> None:
        """Rows (`add_rows`' ids and rows) whose transaction has committed: published from
        memory at the relay's next turn, then deleted in one statement, without reading
        the table. Until then, and if that fails, the table keeps them for the sweep."""
        if committed:
            self._fresh.extend(committed)
            self._wakeup.set()

    def _sweep_due(self) -> bool:
        return self._sweep_asked or time.monotonic() - self._swept_at >= self._poll_interval

    async def run(self) -> None:
        delay = min(0.1, self._max_backoff)
        while True:
            # Cleared before reading the table, so a wake-up during the flush is not lost.
            self._wakeup.clear()
            sent = 0
            try:
                if self._fresh:
                    await self._send_fresh()
                if self._sweep_due():
                    # Asked for: every row; only due: the settled ones.
                    sent = await self.flush_once(older_than=0.0 if self._sweep_asked else SETTLED)
                    if sent == self._batch_size:
                        self._sweep_asked = True  # a backlog (an outage's): on at once
                delay = min(0.1, self._max_backoff)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is None or task.cancelling():
                    raise  # the service is stopping
                # Cancelled by the client library, not by us (a connection closed under
                # a publish): a failed try like any other. Re-raised, it would end the
                # relay for good and leave every later row unpublished.
                log.warning("outbox relay interrupted, will retry", delay=delay)
                self._sweep_asked = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._max_backoff)
                continue
            except Exception as exc:  # broker or database trouble: keep the rows, retry
                log.warning("outbox relay failed, will retry", error=repr(exc), delay=delay)
                self._sweep_asked = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._max_backoff)
                continue
            if sent < self._batch_size and not self._fresh:
                # Until a wake-up, or the next sweep is due.
                left = self._poll_interval - (time.monotonic() - self._swept_at)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), max(left, 0.0))

    async def _send_fresh(self) -> None:
        """The fast lane: publish handed-over rows from memory, in their order, and delete
        the ones the broker confirmed, in one statement. Any that failed stay in the table
        and the sweep is asked for (it counts refusals, and retries with backoff). A crash
        or a failed DELETE leaves published rows in the table: the sweep publishes them
        again, and the consumers' inboxes absorb the copies."""
        batch = self._fresh[: self._batch_size]
        del self._fresh[: self._batch_size]
        results = await asyncio.gather(
            *(self._publish(dict(zip(_NAMES, row, strict=True))) for _, row in batch),
            return_exceptions=True,
        )
        sent = [i for (i, _), res in zip(batch, results, strict=True) if res is None]
        if len(sent) < len(batch):
            self._sweep_asked = True
        if sent:
            async with self._pool.acquire() as conn:
                await conn.execute(_delete_sent(sent))
            self._metrics.published.inc(len(sent))

    async def flush_once(self, *, older_than: float = 0.0) -> int:
        """Publish a batch; returns how many went out. Rows the broker refused stay, with
        their attempt counted, and the others are not held back by them. `older_than`:
        only rows emitted at least that many seconds ago (the timed sweep leaves alone
        the rows another replica's fast lane is sending now).

        The transaction is begun and ended by hand so that its usual end, every row
        published, is one round trip: the DELETE and the COMMIT sent together as one
        simple query (three round trips a batch instead of four). An error or a
        cancellation leaves it open, and the pool rolls it back when it takes the
        connection back (platen.db.pool), the rows and their locks with it."""
        self._sweep_asked = False
        self._swept_at = time.monotonic()
        # Rows handed over meanwhile are the fast lane's, next turn: not sent twice here.
        # (Most sweeps find none, and send the statement without the list.)
        handed_over = [i for i, _ in self._fresh]
        async with self._pool.acquire() as conn:
            await conn.execute("BEGIN")
            rows = await conn.fetch(
                _SWEEP_BUT if handed_over else _SWEEP,
                self._batch_size,
                MAX_ATTEMPTS,
                older_than,
                *([handed_over] if handed_over else []),
            )
            if not rows:
                await conn.execute("COMMIT")
                return 0
            results = await asyncio.gather(
                *(self._publish(r) for r in rows), return_exceptions=True
            )
            sent = [r["id"] for r, res in zip(rows, results, strict=True) if res is None]
            failed = [(r, res) for r, res in zip(rows, results, strict=True) if res is not None]
            if not failed:
                await conn.execute(_delete_and_commit(sent))
                self._metrics.published.inc(len(sent))
                return len(sent)
            await conn.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", sent)
            self._metrics.published.inc(len(sent))
            for row, error in failed:
                # A CancelledError among the results is a publish the client library gave
                # up on (its connection closed while a confirm was awaited): the relay's
                # own cancellation raises out of `gather` instead. Not a refusal: kept.
                if not is_refusal(error):
                    continue  # kept as it is, and said once for the batch below
                self._metrics.refusals.inc()
                await conn.execute(
                    "UPDATE outbox SET attempts = attempts + 1, last_error = $2 WHERE id = $1",
                    row["id"],
                    repr(error)[:1000],
                )
                level = log.error if row["attempts"] + 1 >= MAX_ATTEMPTS else log.warning
                level(
                    "outbox row not published",
                    message_type=row["message_type"],
                    message_id=row["message_id"],
                    **correlation_fields(row["correlation_id"], row["message_type"]),
                    attempts=row["attempts"] + 1,
                    error=repr(error),
                )
            await conn.execute("COMMIT")
        if not sent:
            raise PublishFailed(
                f"none of {len(failed)} outbox rows was published: {failed[0][1]!r}"
            )
        return len(sent)

    async def _publish(self, row: Mapping[str, Any]) -> None:
        message = build(
            body=row["body"],
            message_type=row["message_type"],
            schema_version=row["schema_version"],
            producer=self._producer,
            message_id=row["message_id"],
            correlation_id=row["correlation_id"],
            occurred_at=row["created_at"],
            expiration_ms=row["expiration_ms"],
            reply_to=_reply_to(row["reply_to"], self._user_id),
            marks=row["marks"],
            user_id=self._user_id,
        )
        if row["exchange"] == DESKTOP and (login := login_of_key(row["routing_key"])):
            # A desktop message is mandatory: its user's queue must exist first. Declared
            # here, after the commit that recorded the message, and with its retries.
            await self._publisher.ensure_desktop_queue(login)
        await self._publisher.publish(row["exchange"], row["routing_key"], message)
        log.debug(
            "published",
            message_type=row["message_type"],
            message_id=row["message_id"],
            **correlation_fields(row["correlation_id"], row["message_type"]),
        )


def _delete(ids: list[int]) -> str:
    """The DELETE of rows published (ids written as integers: the table's own bigints)."""
    return f"DELETE FROM outbox WHERE id IN ({', '.join(str(int(i)) for i in ids)})"


# Deleting rows already published need not wait for the disk: lost in a crash of
# PostgreSQL, the rows come back, are published again and the consumers' inboxes absorb
# the copies, as after any crash between a publish and its DELETE. Waiting cost the relay
# a WAL flush after each delivery's rows, before it could send the next delivery's.
# `SET LOCAL` ends with the transaction: the pooled connection keeps its setting.
_NO_FLUSH = "SET LOCAL synchronous_commit TO off"


def _delete_sent(ids: list[int]) -> str:
    """The fast lane's DELETE in a transaction of its own that does not wait for the
    disk, as one simple query: one round trip."""
    return f"BEGIN; {_NO_FLUSH}; {_delete(ids)}; COMMIT"


def _delete_and_commit(ids: list[int]) -> str:
    """The end of a flush that published every row: their DELETE and the COMMIT as one
    simple query (which takes no parameters), the COMMIT not waiting for the disk."""
    return f"{_delete(ids)}; {_NO_FLUSH}; COMMIT"


def _reply_to(queue: str | None, user: str | None) -> str | None:
    """The reply key of this service's `queue` (replies come through `platen.replies`,
    under the sender's own user only). Without a known user nobody can answer it."""
    return reply_key(user, queue) if queue and user else queue
