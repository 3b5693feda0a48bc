"""Requests to the services over the broker, answered through `platen.replies`.

A client has a reply queue of its own (server-named, exclusive, gone with its connection)
bound to `platen.replies` under `reply.<its broker user>.<queue>`, the key it sends as every
request's `reply_to`. The broker lets it bind under its own user only, and a service
answers only to a `reply_to` under the request's broker-checked `user_id`: a reply (which
may carry a new password) reaches no one but who asked.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from platen.events.base import HEADER_VERSION, Message
from platen.events.discovery import node_urls, signed_in_as
from platen.events.registry import decode, encode
from platen.events.routing import COMMANDS, REPLIES, reply_key
from platen.events.system import ErrorReply
from platen.rpc.connecting import open_connection

PRODUCER = "platen-rpc"
# A broker step that is not a request (opening a channel, declaring the reply queue,
# binding a key) gets this long: a broker that hangs once the connection is made answers
# none, and without a limit the step would wait until the connection's heartbeat gives up
# on it, about 3 minutes.
STEP_TIMEOUT = 10.0


class RequestFailed(RuntimeError):
    """The service answered with an error, or did not answer in time."""


class ConnectionLost(Exception):
    """The connection closed while a request waited for its reply (`Client._on_close`)."""


def amqp_message(message: Message, *, correlation_id: str | None = None, **kw) -> aio_pika.Message:
    return aio_pika.Message(
        encode(message),
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=str(uuid.uuid4()),
        type=message.message_type,
        app_id=PRODUCER,
        correlation_id=correlation_id,
        timestamp=datetime.now(UTC),
        headers={HEADER_VERSION: message.schema_version},
        **kw,
    )


class Client:
    def __init__(
        self, channel: AbstractChannel, connection=None, user_id: str | None = None
    ) -> None:
        self.channel = channel
        self.connection = connection
        # Who sends: the broker user this client signed in as. RabbitMQ refuses a message
        # whose `user_id` is not the signed-in user, so services may trust it.
        self.user_id = user_id
        self._waiting: dict[str, asyncio.Future] = {}
        self._listeners: dict[str, Callable[[AbstractIncomingMessage], None]] = {}
        self._bound: set[str] = set()  # what `listen` bound the reply queue under
        self._queue: aio_pika.abc.AbstractQueue | None = None
        self.reply_to = ""
        if connection is not None:
            # Replies come to a queue that goes with the connection: a request waiting
            # when it closes would wait out its whole timeout for nothing.
            connection.close_callbacks.add(self._on_close)

    async def start(self) -> None:
        if self.user_id is None:
            # Signed in by certificate: the broker knows the user, this client does not,
            # and cannot name the reply key the broker would let it bind.
            raise RequestFailed("requests need the broker user in the AMQP URL")
        queue = await self.channel.declare_queue(exclusive=True, auto_delete=True)
        self.reply_to = reply_key(self.user_id, queue.name)
        await queue.bind(REPLIES, routing_key=self.reply_to)
        await queue.consume(self._on_reply, no_ack=True)
        self._queue = queue

    async def listen(
        self,
        routing_key: str,
        on_message: Callable[[AbstractIncomingMessage], None],
        *,
        under: str | None = None,
    ) -> None:
        """Also receive on the reply queue what `platen.replies` carries under
        `routing_key`, handing each message to `on_message` (a print server's decision
        keys, `platen.events.routing.decision_key`). The broker refuses a key this user may
        not bind (`aiormq.exceptions.ChannelAccessRefused`), and the channel with it.
        `under`: a topic pattern that covers `routing_key`, bound once for this client's
        life instead (a print server's agent binds all its decision keys at its first job;
        each job after only adds its listener here, without a round trip to the broker)."""
        if self._queue is None:
            raise RuntimeError("listen before start")
        binding = under or routing_key
        if binding not in self._bound:
            await self._bind(binding)
        self._listeners[routing_key] = on_message

    async def _bind(self, routing_key: str) -> None:
        async with self._side_channel(f"binding {routing_key!r}") as channel:
            queue = await channel.get_queue(self._queue.name, ensure=False)
            await queue.bind(REPLIES, routing_key=routing_key)
        self._bound.add(routing_key)

    @asynccontextmanager
    async def _side_channel(self, what: str) -> AsyncIterator[AbstractChannel]:
        """A channel of its own for one step that the broker may refuse: a refusal closes
        that channel only, not the one this client's replies arrive on, which a print
        server's agent shares between all the jobs it serves (their replies would be lost
        with it)."""
        async with broker_step(what):
            channel = await self.connection.channel()
            try:
                yield channel
            finally:
                if not channel.is_closed:
                    await channel.close()

    async def unlisten(self, routing_key: str) -> None:
        """Stop receiving what `listen` asked for (a connection that outlives the job); a
        pattern bound for it (`under`) stays bound for the next."""
        if self._listeners.pop(routing_key, None) is None:
            return  # never bound (refused): nothing to undo
        if routing_key in self._bound and self._queue is not None:
            self._bound.discard(routing_key)
            async with broker_step(f"unbinding {routing_key!r}"):
                await self._queue.unbind(REPLIES, routing_key=routing_key)

    def _on_close(self, *_: object) -> None:
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(ConnectionLost())

    async def _on_reply(self, raw: AbstractIncomingMessage) -> None:
        future = self._waiting.pop(raw.correlation_id or "", None)
        if future is not None and not future.done():
            future.set_result(raw)
        elif (listener := self._listeners.get(raw.routing_key or "")) is not None:
            listener(raw)

    async def consumers(self, queue: str) -> int:
        """How many consumers `queue` has (0 if it does not exist): asking a service
        that is not consuming would only leave an expired request in its dead letters."""
        try:
            async with self._side_channel(f"counting the consumers of {queue!r}") as channel:
                declared = await channel.declare_queue(queue, passive=True)
                return declared.declaration_result.consumer_count
        except aio_pika.exceptions.ChannelClosed:
            return 0  # no such queue (the broker closed the side channel to say so)

    async def request(
        self,
        routing_key: str,
        message: Message,
        timeout: float = 15.0,
        *,
        correlation_id: str | None = None,
    ) -> Message:
        """Send `message` and wait for its reply. `correlation_id` names what the request
        concerns (a job's id, say) for the services' logs; the reply is matched by the
        request's own message id, which the service sends back as the reply's
        correlation id."""
        msg = amqp_message(
            message,
            reply_to=self.reply_to,
            expiration=timeout,
            correlation_id=correlation_id,
            user_id=self.user_id,
        )
        future = asyncio.get_running_loop().create_future()
        self._waiting[msg.message_id] = future
        task = asyncio.current_task()
        try:
            # One limit for the publication's confirmation and the answer: a broker that
            # hangs once the connection is made confirms nothing, and the request would
            # wait until the connection's heartbeat gives up on it (about 3 minutes).
            async with asyncio.timeout(timeout):
                exchange = await self.channel.get_exchange(COMMANDS, ensure=False)
                try:
                    await exchange.publish(msg, routing_key=routing_key, mandatory=True)
                except (aio_pika.exceptions.DeliveryError, aio_pika.exceptions.ChannelClosed):
                    raise RequestFailed(
                        f"nothing handles {routing_key!r}: is Platen running?"
                    ) from None
                raw = await future
        except TimeoutError:
            raise RequestFailed(f"no answer to {routing_key!r} within {timeout:.0f}s") from None
        except asyncio.CancelledError:
            if task is None or task.cancelling():
                raise  # the request itself was cancelled
            # Not this task: the connection closed under the request, and aiormq cancels
            # what waited on it. An outage, as a request that found no connection.
            raise _lost(routing_key) from None
        except ConnectionLost:
            # Closed after the publication was confirmed, while the reply was awaited.
            raise _lost(routing_key) from None
        finally:
            self._waiting.pop(msg.message_id, None)
        reply = decode(raw.type, (raw.headers or {}).get(HEADER_VERSION), raw.body)
        if isinstance(reply, ErrorReply):
            raise RequestFailed(reply.error)
        return reply


def _lost(routing_key: str) -> RequestFailed:
    return RequestFailed(f"no answer to {routing_key!r}: the connection to the broker was lost")


@asynccontextmanager
async def connect(url: str) -> AsyncIterator[Client]:
    connection = await _first_answering(url)
    async with connection:
        async with broker_step("opening a channel and a reply queue"):
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            client = Client(channel, connection, signed_in_as(url))
            await client.start()
        yield client


@asynccontextmanager
async def broker_step(what: str) -> AsyncIterator[None]:
    """`what`, done within STEP_TIMEOUT, or RequestFailed: the broker did not answer (an
    outage, as the CUPS backend tells from the words "no answer")."""
    try:
        async with asyncio.timeout(STEP_TIMEOUT):
            yield
    except TimeoutError:
        raise RequestFailed(
            f"no answer from the broker within {STEP_TIMEOUT:g}s ({what})"
        ) from None


async def _first_answering(url: str) -> aio_pika.abc.AbstractConnection:
    """A connection to the first node of `url` (a cluster may be named by several) that
    accepts one: a request needs one connection only, to any node."""
    refused = []
    for node in node_urls(url):
        try:
            return await open_connection(node, timeout=10)
        except (OSError, aio_pika.exceptions.AMQPConnectionError) as exc:
            refused.append(f"{_safe(node)}: {exc}")
    raise RequestFailed(f"cannot reach the broker at {'; '.join(refused)}")


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://{rest.split('@', 1)[1]}"
    return url
