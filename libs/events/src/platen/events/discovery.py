"""Where the broker is, for the programs people run (platenctl, platen-client).

$PLATEN_AMQP_URL when set, else the `make run` system of the checkout this is run from
(its `run/platen.env`), else a broker on this machine.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

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
    if "://" not in url:
        return [url]
    scheme, userinfo, hosts, tail = _split(url)
    at = "@" if userinfo else ""
    nodes = [h.strip() for h in hosts.split(",") if h.strip()]
    if not nodes:
        raise ValueError(f"no broker host in {scheme}://{hosts}{tail}")
    return [f"{scheme}://{userinfo}{at}{node}{tail}" for node in nodes]


def _split(url: str) -> tuple[str, str, str, str]:
    """(scheme, user:password, host part, path and query) of a URL whose host part may
    list several hosts (which urllib cannot take apart: it reads a port after the first)."""
    scheme, _, rest = url.partition("://")
    # The path (vhost) and query start at the first "/" or "?" after the host part; the
    # credentials end at the last "@" before it (a password may hold neither, encoded).
    end = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    userinfo, _, hosts = rest[:end].rpartition("@")
    return scheme, userinfo, hosts, rest[end:]


def with_login(url: str, user: str | None, password: str | None) -> str:
    """`url` (naming one host or several) signed in as `user` with `password`; one not
    given (None) is kept from `url`; both None and none in `url`: no credentials."""
    scheme, userinfo, hosts, tail = _split(url)
    old_user, _, old_password = userinfo.partition(":")
    user = quote(user, safe="") if user is not None else old_user
    password = quote(password, safe="") if password is not None else old_password
    login = f"{user}:{password}@" if user or password else ""
    return f"{scheme}://{login}{hosts}{tail}"


def with_nodes(url: str, nodes: list[str]) -> str:
    """`url` naming the cluster nodes `nodes` ("host:port" each) in its host part."""
    first = urlsplit(node_urls(url)[0])
    userinfo = first.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@{','.join(nodes)}" if userinfo else ",".join(nodes)
    return first._replace(netloc=netloc).geturl()
