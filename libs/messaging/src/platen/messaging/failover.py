"""Connections to a RabbitMQ cluster named by several nodes (platen.events.discovery's
`node_urls`): a first connection goes to the first node that answers, and a robust
connection that is lost (its node stopped) reconnects to the next one in turn.

aio-pika's robust connection reconnects to the one URL it was given; with a node down it
would wait for that node. `Failover` is that connection with its URL taken from the list,
moved on by one at every attempt.
"""

from __future__ import annotations

from typing import Any

import aio_pika
from aio_pika import RobustConnection
from aio_pika.abc import AbstractConnection
from yarl import URL

from platen.events.discovery import node_urls
from platen.rpc.connecting import open_connection


def first_node(url: str) -> str:
    """The URL of the first node `url` names (what a library taking one URL is given)."""
    return node_urls(url)[0]


def failover_class(url: str) -> type[RobustConnection]:
    """A robust connection class over every node `url` names (for aio-pika's
    `connect_robust(connection_class=...)`)."""
    nodes = tuple(URL(u) for u in node_urls(url))

    class Failover(RobustConnection):
        _nodes = nodes
        _turn = 0

        @property  # type: ignore[override]
        def url(self) -> URL:
            return self._nodes[self._turn % len(self._nodes)]

        @url.setter
        def url(self, value: URL) -> None:
            # Set once by Connection.__init__ (the first node) and by update_secret (new
            # credentials, which hold on every node).
            self._nodes = tuple(
                n.with_user(value.user).with_password(value.password) for n in self._nodes
            )

        @property  # type: ignore[override]
        def transport(self) -> Any:
            return self.__dict__.get("_transport")

        @transport.setter
        def transport(self, value: Any) -> None:
            # aio-pika clears the transport just before every attempt to connect (and at
            # start and close): each attempt goes to the next node, whichever failed or
            # went away. Where the first attempt lands does not matter: every node serves
            # every queue.
            if value is None:
                self._turn += 1
            self.__dict__["_transport"] = value

    return Failover


def fail_fast(url: str) -> bool:
    """Whether a robust connection's first attempt should raise when it fails: with one
    node, yes (as aio-pika does); with several, no: it goes on to the next node, as every
    later attempt does, until one answers."""
    return len(node_urls(url)) == 1


async def connect_robust(url: str, **kwargs: Any) -> aio_pika.abc.AbstractRobustConnection:
    """aio_pika.connect_robust over every node `url` names."""
    return await aio_pika.connect_robust(
        first_node(url),
        connection_class=failover_class(url),
        fail_fast=fail_fast(url),
        **kwargs,
    )


async def connect(url: str) -> AbstractConnection:
    """A plain connection to the first node of `url` that accepts one."""
    nodes = node_urls(url)
    for i, node in enumerate(nodes):
        try:
            return await open_connection(node)
        except (OSError, aio_pika.exceptions.AMQPConnectionError):
            if i == len(nodes) - 1:
                raise
    raise AssertionError("node_urls returned no node")
