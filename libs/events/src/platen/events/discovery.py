"""Where the broker is, for the programs people run (platenctl, platen-client).

$PLATEN_AMQP_URL when set, else the `make run` system of the checkout this is run from
(its `run/platen.env`), else a broker on this machine.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/"
ENV_FILE = Path("run") / "platen.env"


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip()
    return values


def find_env_file(start: Path | None = None) -> Path | None:
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / ENV_FILE
        if candidate.is_file():
            return candidate
    return None


def amqp_url() -> str:
    if url := os.environ.get("PLATEN_AMQP_URL"):
        return url
    env_file = find_env_file()
    if env_file and (url := read_env_file(env_file).get("PLATEN_AMQP_URL")):
        return url
    return DEFAULT_URL


def signed_in_as(url: str) -> str | None:
    """The broker user an AMQP URL signs in as: the one it names, the client library's
    default (guest) when it names none, None with certificate sign-in (the broker takes
    the name from the certificate, which the client does not know)."""
    parts = urlsplit(url)
    if parts.username:
        return unquote(parts.username)
    return None if "auth=external" in parts.query.lower() else "guest"


def node_urls(url: str) -> list[str]:
    """The nodes of a RabbitMQ cluster that an AMQP URL names, one URL each.

    A cluster is named as PostgreSQL's libpq names several hosts: one URL whose host part
    lists the nodes, `amqp://user:pass@node1:5672,node2:5672,node3:5672/vhost`. Every node
    serves every queue (quorum queues are replicated), so a program may sign in at any of
    them with the same credentials; a URL with one host is a list of one."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return [url]
    # The path (vhost) and query start at the first "/" or "?" after the host part; the
    # credentials end at the last "@" before it (a password may hold neither, encoded).
    end = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    netloc, tail = rest[:end], rest[end:]
    userinfo, at, hosts = netloc.rpartition("@")
    nodes = [h.strip() for h in hosts.split(",") if h.strip()]
    if not nodes:
        raise ValueError(f"no broker host in {scheme}://{hosts}{tail}")
    return [f"{scheme}://{userinfo}{at}{node}{tail}" for node in nodes]


def with_nodes(url: str, nodes: list[str]) -> str:
    """`url` naming the cluster nodes `nodes` ("host:port" each) in its host part."""
    first = urlsplit(node_urls(url)[0])
    userinfo = first.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@{','.join(nodes)}" if userinfo else ",".join(nodes)
    return first._replace(netloc=netloc).geturl()
