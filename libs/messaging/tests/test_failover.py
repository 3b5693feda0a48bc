"""Connections to a cluster named by several nodes pass over a node that does not answer
(the cluster itself, and a node stopped under load: tests/e2e/test_chaos.py)."""

from __future__ import annotations

import gc
from urllib.parse import urlsplit

import aio_pika
import pytest

from platen.broker_setup import installation
from platen.events.discovery import node_urls, with_login, with_nodes
from platen.localstack.servers import free_port
from platen.messaging import failover
from platen.rpc.client import RequestFailed
from platen.rpc.client import connect as rpc_connect


def test_one_url_names_every_node_with_the_same_credentials_and_vhost():
    url = "amqps://svc:p%40ss@a:5671,b:5672 , c/vh%2Fx?cafile=/ca.pem"
    assert node_urls(url) == [
        "amqps://svc:p%40ss@a:5671/vh%2Fx?cafile=/ca.pem",
        "amqps://svc:p%40ss@b:5672/vh%2Fx?cafile=/ca.pem",
        "amqps://svc:p%40ss@c/vh%2Fx?cafile=/ca.pem",
    ]
    assert node_urls("amqp://guest:guest@127.0.0.1:5672/") == ["amqp://guest:guest@127.0.0.1:5672/"]
    assert with_nodes("amqp://u:p@a:1/vh?x=1", ["h:1", "h:2"]) == "amqp://u:p@h:1,h:2/vh?x=1"
    with pytest.raises(ValueError, match="no broker host"):
        node_urls("amqp://u:p@/vh")


def test_credentials_are_set_on_a_url_naming_several_nodes():
    # What `broker setup` issues each identity, and what a desktop's config is made from.
    cluster = "amqp://admin:x@a:1,b:2/vh?heartbeat=5"
    assert with_login(cluster, "svc", "p/w@") == "amqp://svc:p%2Fw%40@a:1,b:2/vh?heartbeat=5"
    assert with_login(cluster, "bob", None) == "amqp://bob:x@a:1,b:2/vh?heartbeat=5"
    assert with_login(cluster, "", "") == "amqp://a:1,b:2/vh?heartbeat=5"
    assert (
        installation.with_credentials(cluster, "svc", "pw")
        == "amqp://svc:pw@a:1,b:2/vh?heartbeat=5"
    )


def _with_a_dead_node(amqp_url: str) -> str:
    """`amqp_url` with a node that refuses every connection before its real one."""
    live = amqp_url.split("@", 1)[1].split("/", 1)[0]
    return with_nodes(amqp_url, [f"127.0.0.1:{free_port()}", live])


async def test_a_plain_connection_goes_to_the_node_that_answers(amqp_url):
    connection = await failover.connect(_with_a_dead_node(amqp_url))
    async with connection:
        assert not connection.is_closed
    with pytest.raises(OSError):
        await failover.connect(with_nodes(amqp_url, [f"127.0.0.1:{free_port()}"]))


async def test_a_node_that_refuses_leaves_no_connection_open_behind_it(amqp_url):
    """A refused sign-in on every node (a revoked password): the error is the broker's,
    and each connection object made for it is closed, not left for the garbage collector
    to close without an event loop (Python's `Connection.close` never awaited)."""
    password = urlsplit(amqp_url).password
    refused = amqp_url.replace(f":{password}@", ":not-the-password@")
    live = refused.split("@", 1)[1].split("/", 1)[0]
    gc.disable()  # both objects stay to be looked at (each is in a reference cycle)
    try:
        with pytest.raises(aio_pika.exceptions.AMQPConnectionError):
            await failover.connect(with_nodes(refused, [live, live]))
        left = [
            o
            for o in gc.get_objects()
            if isinstance(o, aio_pika.Connection) and o.url.password == "not-the-password"
        ]
        assert len(left) == 2 and all(o.is_closed for o in left)
    finally:
        gc.enable()


async def test_a_robust_connection_tries_the_nodes_in_turn_until_one_answers(amqp_url):
    url = _with_a_dead_node(amqp_url)
    assert not failover.fail_fast(url) and failover.fail_fast(amqp_url)
    # Attempts land on the dead node and the live one in turn: whichever comes first, the
    # connection ends up open, and once open it is usable.
    connection = await failover.connect_robust(url, reconnect_interval=0.2)
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(exclusive=True)
        assert queue.name
    finally:
        await connection.close()


async def test_platenctl_reaches_a_cluster_through_any_node(amqp_url, channel):
    async with rpc_connect(_with_a_dead_node(amqp_url)) as client:
        assert client is not None
    with pytest.raises(RequestFailed, match="cannot reach the broker"):
        async with rpc_connect(with_nodes(amqp_url, [f"127.0.0.1:{free_port()}"])):
            pass


async def test_a_robust_connection_moves_to_the_next_node_when_its_node_goes(amqp_url):
    """Each attempt to connect goes to the next node: the connection's URL changes from
    one attempt to the next (the live node twice here, as a one-node list)."""
    cls = failover.failover_class(_with_a_dead_node(amqp_url))
    seen = []
    conn = cls(failover.first_node(amqp_url))
    for _ in range(4):
        conn.transport = None  # what aio-pika does before each attempt
        seen.append(conn.url.port)
    assert len(set(seen)) == 2 and seen[0] == seen[2] and seen[1] == seen[3]
    assert isinstance(conn, aio_pika.RobustConnection)
