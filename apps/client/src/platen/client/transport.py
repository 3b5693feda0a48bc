"""The client's broker connection: read the user's desktop queue, send their answers.

It reconnects by itself after a broker restart or network loss, and consumes again.
Nothing is lost on the way in: a message is acknowledged only once the client has dealt
with it, and a prompt only once it is closed, so a prompt still open when the client stops
comes back to the next client. Nothing is lost on the way out: an answer that cannot be
published (no connection) is kept and sent again until the broker confirms it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import aio_pika
import aiormq.exceptions
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage

from platen.client.contract import DESKTOP_MESSAGES, REPLY_KINDS, ClientHello
from platen.client.wire import HEADER_VERSION, ContractError, DesktopReply, Message, decode, encode
from platen.events.discovery import node_urls, signed_in_as
from platen.events.routing import (
    DESKTOP_REPLIES,
    desktop_key,
    desktop_queue,
    login_of_broker_user,
)

PREFETCH = 200  # open prompts stay unacknowledged; this many may be open at once

SIGNED_OUT = "signed-out"


def login_refused(exc: BaseException) -> bool:
    """Whether the broker refused the credential itself (a deleted broker user: the desktop
    was revoked, or a replaced password), not the connection for a passing reason. A user
    who is disabled, whose vhost access is taken away, is not refused here: they are let
    in again when enabled."""
    if isinstance(exc, (aiormq.exceptions.AuthenticationError,)):
        return True
    text = str(exc)
    return "ACCESS_REFUSED" in text and "Login was refused" in text


class Delivery:
    """One message from the queue, and how to let the broker forget it."""

    def __init__(self, raw: AbstractIncomingMessage, message: Message) -> None:
        self.raw = raw
        self.message = message
        self.message_id = raw.message_id

    async def ack(self) -> None:
        # The channel it came on may be gone (a reconnect): the broker then delivers it
        # again, and the client recognises it.
        with contextlib.suppress(Exception):
            await self.raw.ack()


Status = Callable[[str, str], Awaitable[None] | None]  # (state, detail)


class Transport:
    def __init__(
        self,
        url: str,
        login: str,
        on_message: Callable[[Delivery], Awaitable[None]],
        on_status: Status,
        *,
        on_unreadable: Callable[[str], None] | None = None,
    ) -> None:
        self.url = url
        self.login = login
        self.on_message = on_message
        self.on_status = on_status
        self.on_unreadable = on_unreadable
        self.connection: AbstractConnection | None = None
        # Answers not yet confirmed by the broker, oldest first.
        self._outgoing: collections.deque[aio_pika.Message] = collections.deque()
        self._wake = asyncio.Event()
        # Set when the broker refused this credential: `run` has returned for good.
        self.signed_out = False

    @property
    def identity(self) -> str:
        """The broker user this desktop signs in as, when it speaks for `login` (a desktop
        signed in with the directory password is `<login>~<desktop>`, with a queue of its
        own); else the login (the administrator-issued credential, a shared test user)."""
        broker_user = signed_in_as(self.url)
        if broker_user is not None and login_of_broker_user(broker_user) == self.login:
            return broker_user
        return self.login

    async def _status(self, state: str, detail: str = "") -> None:
        result = self.on_status(state, detail)
        if asyncio.iscoroutine(result):
            await result

    async def run(self) -> None:
        """Connect, consume and publish answers; after any loss of the connection, do it
        all again (for as long as it takes). Returns only when the broker refuses the
        credential (`signed_out`): trying a dead credential again would never succeed."""
        delay = 1.0
        # A cluster may be named by several nodes: each attempt goes to the next one, so a
        # node that is down (or went down under this session) is passed over.
        nodes = itertools.cycle(node_urls(self.url))
        while True:
            try:
                connection = await self._connect(next(nodes))
            except (OSError, aio_pika.exceptions.AMQPError, TimeoutError) as exc:
                if login_refused(exc):
                    self.signed_out = True
                    await self._status(
                        SIGNED_OUT,
                        "this desktop is signed out of Platen (its credential "
                        "was revoked or replaced): sign in again with platen-client --sign-in",
                    )
                    return
                await self._status("disconnected", f"cannot reach the server: {exc}")
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            delay = 1.0
            try:
                await self._session(connection)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                await self._status("disconnected", f"connection lost: {exc!r}")
            finally:
                self.connection = None
                with contextlib.suppress(Exception):
                    await connection.close()
            await asyncio.sleep(delay)

    async def _connect(self, node: str) -> AbstractConnection:
        """One attempt on `node`. aio-pika's `connect` drops the connection object it made,
        unclosed, when the broker refuses or does not answer: a desktop retrying through
        an outage left one for the garbage collector at every attempt, which closes it
        without an event loop (Python's "`Connection.close` was never awaited"). Closed
        here before the error goes on. (Servers share `platen.rpc.connecting`; the client
        loads no server library.)"""
        connection = aio_pika.Connection(
            aio_pika.connection.make_url(node),
            client_properties={"connection_name": f"platen-client/{self.login}"},
        )
        try:
            await connection.connect(timeout=10)
        except BaseException:
            await connection.close()
            raise
        return connection

    async def _session(self, connection: AbstractConnection) -> None:
        """One connection's life: returns (or raises) when it is gone."""
        lost = asyncio.Event()
        connection.close_callbacks.add(lambda *_: lost.set())
        channel = await self._consume(connection)
        # A channel the broker closes (an error on it) ends the session as a lost
        # connection does: the next one consumes again.
        channel.close_callbacks.add(lambda *_: lost.set())
        self.connection = connection
        await self._status("connected", self.login)
        publisher = asyncio.create_task(self._publish_loop(connection))
        waiting = asyncio.create_task(lost.wait())
        try:
            # Also over when publishing fails (its channel closed): the answer that failed
            # is still first in line, for the next session.
            await asyncio.wait({publisher, waiting}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (publisher, waiting):
                task.cancel()
            results = await asyncio.gather(publisher, waiting, return_exceptions=True)
        problem = next((r for r in results if isinstance(r, Exception)), None)
        await self._status("disconnected", f"connection lost{f': {problem!r}' if problem else ''}")

    async def _consume(self, connection: AbstractConnection) -> AbstractChannel:
        """Start consuming the user's queue, waiting for the server to create it."""
        announced = False
        while True:
            channel = await connection.channel()
            try:
                await channel.set_qos(prefetch_count=PREFETCH)
                # Not declared: a desktop may only read its queue; the server creates it.
                queue = await channel.get_queue(desktop_queue(self.identity), ensure=False)
                await queue.consume(self._deliver)
                return channel
            except aio_pika.exceptions.ChannelClosed as exc:
                if not announced:
                    await self._status("waiting", f"Platen does not know {self.login} yet: {exc}")
                    announced = True
                await asyncio.sleep(2)

    async def _deliver(self, raw: AbstractIncomingMessage) -> None:
        try:
            message = decode(
                DESKTOP_MESSAGES, raw.type, (raw.headers or {}).get(HEADER_VERSION), raw.body
            )
        except ContractError as exc:
            # A message this client cannot read (a newer server?): say so and drop it,
            # rather than have it come back for ever.
            if self.on_unreadable:
                self.on_unreadable(f"unreadable {raw.type!r} message skipped: {exc}")
            await raw.reject(requeue=False)
            return
        await self.on_message(Delivery(raw, message))

    # ------------------------------------------------------------------- answers

    def send(self, reply: DesktopReply) -> None:
        """Queue an answer; it is published (with a broker confirm) as soon as possible."""
        self._outgoing.append(self._amqp(reply))
        self._wake.set()

    def _amqp(self, reply: DesktopReply) -> aio_pika.Message:
        kind = REPLY_KINDS[type(reply)]
        props: dict = {}
        # With its own broker identity, the desktop says who it is in `user_id`, which the
        # broker checks against the signed-in user (a shared test user says nothing).
        broker_user = signed_in_as(self.url)
        if broker_user is not None and login_of_broker_user(broker_user) == self.login:
            props["user_id"] = broker_user
        msg = aio_pika.Message(
            encode(reply),
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=str(uuid.uuid4()),
            type=reply.message_type,
            app_id="platen-client",
            correlation_id=str(getattr(reply, "job_id", "")) or None,
            timestamp=datetime.now(UTC),
            headers={HEADER_VERSION: reply.schema_version, "platen-reply-kind": kind},
            **props,
        )
        return msg

    async def _publish_loop(self, connection: AbstractConnection) -> None:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        exchange = await channel.get_exchange(DESKTOP_REPLIES, ensure=False)
        # Each connection starts with a hello: the server answers with this user's client
        # options as they are now (changes made while the client was away included).
        hello = ClientHello(user=self.login)
        await exchange.publish(
            self._amqp(hello), routing_key=desktop_key(self.login, hello.desktop_kind)
        )
        while True:
            while not self._outgoing:
                self._wake.clear()
                await self._wake.wait()
            msg = self._outgoing[0]
            kind = str(msg.headers["platen-reply-kind"])
            # Taken off the list only once the broker has confirmed it: a connection lost
            # on the way leaves it for the next connection.
            await exchange.publish(msg, routing_key=desktop_key(self.login, kind), mandatory=True)
            self._outgoing.popleft()

    async def close(self) -> None:
        if self.connection is not None:
            await self.connection.close()
