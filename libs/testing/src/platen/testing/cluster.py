"""A three-node RabbitMQ cluster and a PostgreSQL of one's own, to fail node by node.

Each node is a `LocalRabbitMQ` in a folder of its own (its ports, node name, data), all
with the same Erlang cookie, the second and third joined to the first with
`rabbitmqctl join_cluster`. Quorum queues declared afterwards get a member on every node
(RabbitMQ's default initial group size is the cluster's size), so a node that stops takes
no queue with it: the others elect a new leader. Platen's programs are given every node
in one URL (platen.events.discovery `node_urls`) and fail over to another.

Only the chaos test and bench/chaos.py use it: each node costs about 100 MB and seconds of
Erlang start-up.
"""

from __future__ import annotations

import collections
import contextlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import quote

import httpx

from platen.events.discovery import with_nodes
from platen.localstack import lifeline
from platen.localstack.servers import LocalPostgres, LocalRabbitMQ
from platen.testing.infra import Infra
from platen.testing.outages import PrivateStack

NODES = 3


@dataclass
class ClusterStack(PrivateStack):
    """`rabbit` is the first node (where vhosts and users are made; the cluster shares
    them); `nodes` all three."""

    nodes: list[LocalRabbitMQ] | None = None

    @property
    def infra(self) -> Infra:
        # The nodes speak plain AMQP on loopback (no TLS listener), and a node is stopped
        # and started whole (`stop_node`), not restarted in place.
        return replace(
            super().infra, source="private 3-node cluster", amqps_url=None, restart_broker=None
        )

    @property
    def members(self) -> list[LocalRabbitMQ]:
        assert self.nodes is not None
        return self.nodes

    def service_url(self, url: str) -> str:
        """`url` (signed in at one node) naming every node of the cluster."""
        return with_nodes(url, [f"127.0.0.1:{n.amqp_port}" for n in self.members])

    def running(self) -> list[LocalRabbitMQ]:
        return [n for n in self.members if n.proc is not None and n.proc.poll() is None]

    def leaders(self, vhost: str) -> collections.Counter[str]:
        """How many of `vhost`'s quorum queues each node leads now (asked of a running
        node's management API: every node knows every queue)."""
        node = self.running()[0]
        r = httpx.get(
            f"{node.management_url}/api/queues/{quote(vhost, safe='')}",
            auth=("guest", "guest"),  # the private cluster's administrator
            params={"columns": "name,type,leader"},
            timeout=120,
        )
        r.raise_for_status()
        return collections.Counter(q["leader"] for q in r.json() if q.get("leader"))

    def node_named(self, nodename: str) -> LocalRabbitMQ:
        return next(n for n in self.members if n.nodename == nodename)

    def stop_node(self, node: LocalRabbitMQ) -> None:
        """Stop one node's process (its connections drop; the queues it led elect a
        leader among the others)."""
        node.stop()

    def start_node(self, node: LocalRabbitMQ) -> None:
        """Start it again on its ports and data: it rejoins the cluster by itself."""
        node.start(timeout=300)

    def close(self) -> None:
        for node in self.members:
            node.stop()
        self.postgres.stop()


def _cookie(folder: Path, cookie: str) -> None:
    """The Erlang cookie the nodes (and rabbitmqctl, with the same HOME) share."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / ".erlang.cookie"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o400)
    try:
        os.write(fd, cookie.encode())
    finally:
        os.close(fd)


def _join(node: LocalRabbitMQ, first: LocalRabbitMQ) -> None:
    node.ctl("stop_app", timeout=300)
    node.ctl("reset", timeout=300)
    node.ctl("join_cluster", first.nodename, timeout=300)
    node.ctl("start_app", timeout=300)
    node.ctl("await_startup", timeout=300)


@contextlib.contextmanager
def cluster_stack() -> Iterator[ClusterStack]:
    """Three RabbitMQ nodes joined into one cluster, and a PostgreSQL; all stopped and
    their data removed at the end."""
    base = Path(tempfile.mkdtemp(prefix="platen-cluster-"))
    lifeline.start()  # a benchmark (chaos.py, outage.py) gets the watcher tests have
    lifeline.remove_after(base)  # should this process be killed before its teardown
    base.chmod(0o755)  # the postgres user must reach its data folder
    cookie = secrets.token_hex(20)
    nodes = []
    for i in range(NODES):
        _cookie(base / f"rabbit{i + 1}", cookie)
        nodes.append(LocalRabbitMQ(base / f"rabbit{i + 1}"))
    stack = ClusterStack(base, nodes[0], LocalPostgres(base / "postgres"), nodes=nodes)
    try:
        # The nodes' Erlang start-up is the slow part: side by side, with PostgreSQL's.
        with ThreadPoolExecutor(NODES + 1) as pool:
            started = [pool.submit(n.start, 300) for n in nodes]
            started.append(pool.submit(stack.postgres.start, 120))
            for future in started:
                future.result()
        for node in nodes[1:]:
            _join(node, nodes[0])
        status = nodes[0].ctl("cluster_status", "--formatter", "json", timeout=300)
        missing = [n.nodename for n in nodes if n.nodename not in status]
        if missing:
            raise RuntimeError(f"nodes not in the cluster: {missing}\n{status}")
        yield stack
    finally:
        stack.close()
        shutil.rmtree(base, ignore_errors=True)
