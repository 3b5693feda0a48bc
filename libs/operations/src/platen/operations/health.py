"""Is this service up? Its container's health check: `python -m platen.operations.health NAME`.

A service is healthy when each of its queues has a consumer that it holds: signed in as
the service's broker user, from this host's own address (so one replica's consumers do
not vouch for another's). A service whose broker or database is away stops consuming
(it holds its delivery, or its subscribers close), so this answers for all three.

It asks the broker's management API as the read-only monitoring identity
(`PLATEN_BROKER_MONITOR_URL`, made by the installer), and sends no message: the service's
own broker user may not send its own status query, and no wider one is handed to it.
Exit status 0 when healthy, 1 (with what is missing) when not.

It runs every few seconds in every container, so it starts light: the standard library
only, and the service's queues from `PLATEN_HEALTH_QUEUES` (written by the installer from
`platen.messaging.topology.consumer_queues`), not by importing every service's code.

Each service also serves `/health/ready` and `/metrics` itself (platen.operations.metrics);
this check stays the containers' because it needs no port opened in them and sees the
consumers as the broker does.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import sys
import urllib.request
from collections.abc import Iterable
from urllib.parse import quote, unquote, urlsplit

from platen.operations.management_url import nodes, split_credentials


def missing_consumers(
    consumers: Iterable[dict], queues: Iterable[str], user: str, hosts: set[str]
) -> list[str]:
    """The queues among `queues` with no consumer of `user` from one of `hosts`, given
    the management API's consumer list."""
    held = {c["queue"]["name"] for c in consumers if _is_of(c, user, hosts)}
    return [q for q in queues if q not in held]


def _is_of(consumer: dict, user: str, hosts: set[str]) -> bool:
    # The broker lists a consumer whose channel it has no statistics for yet with
    # `"channel_details": []`: whose it is cannot be told, so it vouches for nobody (the
    # next check, a moment later, sees it).
    details = consumer.get("channel_details")
    if not isinstance(details, dict):
        return False
    return details.get("user") == user and details.get("peer_host") in hosts


def own_addresses() -> set[str]:
    """This host's addresses, as the broker sees its peers."""
    found = {"127.0.0.1", "::1"}
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None):
            found.add(str(info[4][0]))
    except OSError:
        pass
    return found


def check(amqp_url: str, monitor_url: str, queues: list[str], timeout: float = 20) -> list[str]:
    """What is missing for the service signed in with `amqp_url`, consuming `queues`, to
    be healthy (empty: healthy). The first node of `monitor_url` that answers is asked."""
    _, credentials = split_credentials(monitor_url)
    user, password = credentials or ("", "")
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    amqp = urlsplit(amqp_url)
    vhost = quote(unquote(amqp.path[1:]) or "/", safe="")
    failures = []
    for node in nodes(monitor_url):
        request = urllib.request.Request(
            f"{node}/api/consumers/{vhost}", headers={"Authorization": f"Basic {auth}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                consumers = json.load(answer)
            break
        except (OSError, ValueError) as exc:
            failures.append(f"{node}: {exc}")
    else:
        return [f"the broker's management API did not answer: {'; '.join(failures)}"]
    missing = missing_consumers(consumers, queues, unquote(amqp.username or ""), own_addresses())
    return [f"no consumer on {q}" for q in missing]


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m platen.operations.health SERVICE", file=sys.stderr)
        return 2
    amqp_url = os.environ.get("PLATEN_AMQP_URL", "")
    monitor_url = os.environ.get("PLATEN_BROKER_MONITOR_URL", "")
    queues = [q for q in os.environ.get("PLATEN_HEALTH_QUEUES", "").split(",") if q]
    if not amqp_url or not monitor_url or not queues:
        print(
            "PLATEN_AMQP_URL, PLATEN_BROKER_MONITOR_URL and PLATEN_HEALTH_QUEUES must be set",
            file=sys.stderr,
        )
        return 2
    problems = check(amqp_url, monitor_url, queues)
    for problem in problems:
        print(f"{argv[0]}: {problem}")
    if not problems:
        print(f"{argv[0]}: healthy")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
