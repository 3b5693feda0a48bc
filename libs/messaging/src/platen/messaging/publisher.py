"""Persistent publishing with publisher confirms and `mandatory`.

One channel with confirms enabled; `on_return_raises` turns an unroutable message into an
error instead of a silent loss. Many publishes may be awaited at once: confirms arrive
asynchronously and the channel keeps their order.
"""

from __future__ import annotations

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractRobustConnection

from platen.events.discovery import signed_in_as
from platen.events.routing import DESKTOP_SEPARATOR
from platen.messaging import failover
from platen.messaging.topology import declare_desktop_queue, delete_desktop_queue


class Publisher:
    def __init__(self, url: str, name: str) -> None:
        self._url = url
        self._name = name
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None
        self._exchanges: dict[str, AbstractExchange] = {}
        self._desktop_queues: set[str] = set()

    async def connect(self) -> None:
        self._connection = await failover.connect_robust(
            self._url, client_properties={"connection_name": f"{self._name}/publisher"}
        )
        self._channel = await self._connection.channel(
            publisher_confirms=True, on_return_raises=True
        )

    @property
    def user(self) -> str | None:
        """The broker user this publisher signs in as (None: by certificate, unnamed)."""
        return signed_in_as(self._url)

    @property
    def connected(self) -> bool:
        """Whether the connection is open now (a robust one may be reconnecting)."""
        conn = self._connection
        return conn is not None and not conn.is_closed and conn.connected.is_set()

    @property
    def channel(self) -> AbstractChannel:
        if self._channel is None:
            raise RuntimeError("publisher is not connected")
        return self._channel

    async def _exchange(self, name: str) -> AbstractExchange:
        if name == "":
            return self.channel.default_exchange
        ex = self._exchanges.get(name)
        if ex is None:
            ex = await self.channel.get_exchange(name, ensure=False)
            self._exchanges[name] = ex
        return ex

    async def publish(
        self, exchange: str, routing_key: str, message: aio_pika.Message, *, mandatory: bool = True
    ) -> None:
        ex = await self._exchange(exchange)
        await ex.publish(message, routing_key=routing_key, mandatory=mandatory, timeout=30)

    async def ensure_desktop_queue(self, identity: str) -> None:
        """Declare desktop identity `identity`'s queue (a login, or `<login>~<desktop>`).

        Only a login's queue is remembered as declared (the outbox asks for it before every
        message to a desktop). A signed-in desktop's is declared every time it is asked
        for, at sign-in and reconciliation only: another replica may have deleted it when
        that desktop was revoked, and this process would not know."""
        if identity in self._desktop_queues:
            return
        await declare_desktop_queue(self.channel, identity)
        if DESKTOP_SEPARATOR not in identity:
            self._desktop_queues.add(identity)

    async def delete_desktop_queue(self, identity: str) -> None:
        self._desktop_queues.discard(identity)
        await delete_desktop_queue(self.channel, identity)

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
