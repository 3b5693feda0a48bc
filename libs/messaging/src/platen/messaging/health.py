"""Is this service up? Its container's health check: `python -m platen.messaging.health NAME`.

A service is healthy when each of its queues has a consumer that it holds: signed in as
the service's broker user, from this host's own address (so one replica's consumers do
not vouch for another's). A service whose broker or database is away stops consuming
(it holds its delivery, or its subscribers close), so this answers for all three.

It asks the broker's management API as the read-only monitoring identity
(`PLATEN_BROKER_MONITOR_URL`, made by the installer), and sends no message: the service's
own broker user may not send its own status query, and no wider one is handed to it.
Exit status 0 when healthy, 1 (with what is missing) when not.

Prometheus metrics and a served readiness endpoint are a later step (issue 13).
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterable
from urllib.parse import quote, unquote, urlsplit

import httpx

from platen.messaging.broker_admin import vhost_of
from platen.messaging.topology import consumer_queues


def missing_consumers(
    consumers: Iterable[dict], queues: Iterable[str], user: str, hosts: set[str]
) -> list[str]:
    """The queues among `queues` with no consumer of `user` from one of `hosts`, given
    the management API's consumer list."""
    held = {
        c["queue"]["name"]
        for c in consumers
        if c.get("channel_details", {}).get("user") == user
        and c.get("channel_details", {}).get("peer_host") in hosts
    }
    return [q for q in queues if q not in held]


def own_addresses() -> set[str]:
    """This host's addresses, as the broker sees its peers."""
    found = {"127.0.0.1", "::1"}
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None):
            found.add(str(info[4][0]))
    except OSError:
        pass
    return found


def check(service: str, amqp_url: str, monitor_url: str, timeout: float = 5) -> list[str]:
    """What is missing for `service` to be healthy (empty: healthy)."""
    parts = urlsplit(monitor_url)
    auth = (unquote(parts.username or ""), unquote(parts.password or ""))
    base = parts._replace(netloc=parts.hostname + (f":{parts.port}" if parts.port else ""))
    vhost = quote(vhost_of(amqp_url), safe="")
    user = unquote(urlsplit(amqp_url).username or "")
    try:
        r = httpx.get(f"{base.geturl()}/api/consumers/{vhost}", auth=auth, timeout=timeout)
        r.raise_for_status()
    except httpx.HTTPError as exc:
        return [f"the broker's management API did not answer: {exc}"]
    queues = [q.name for q in consumer_queues(service)]
    missing = missing_consumers(r.json(), queues, user, own_addresses())
    return [f"no consumer on {q}" for q in missing]


def main(argv: list[str]) -> int:
    import os

    if len(argv) != 1:
        print("usage: python -m platen.messaging.health SERVICE", file=sys.stderr)
        return 2
    amqp_url = os.environ.get("PLATEN_AMQP_URL", "")
    monitor_url = os.environ.get("PLATEN_BROKER_MONITOR_URL", "")
    if not amqp_url or not monitor_url:
        print("PLATEN_AMQP_URL and PLATEN_BROKER_MONITOR_URL must be set", file=sys.stderr)
        return 2
    problems = check(argv[0], amqp_url, monitor_url)
    for problem in problems:
        print(f"{argv[0]}: {problem}")
    if not problems:
        print(f"{argv[0]}: healthy")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
