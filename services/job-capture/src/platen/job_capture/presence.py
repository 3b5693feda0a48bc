"""Which desktops are connected from where: the broker's own view, through its
management API, with a read-only (`monitoring`) identity.

Only what the broker itself established counts: the user a connection authenticated as
and the peer address of its socket (from the name the broker gives a connection,
`PEER:PORT -> HOST:PORT`, in its connection tracking: `BrokerAdmin.peers`). Client
properties and the name a client gives its connection are chosen by the client and are
never read. Platen's own identities (services, the admin CLI,
print servers, the identity managers) and the broker's `guest` are not desktops: their
broker users are named `platen-...` (after an installation's prefix), names a desktop
cannot take, since a desktop's broker user is its login, made by the notification
service, and logins with "platen-" in them are refused that role here.
"""

from __future__ import annotations

import asyncio
import os
import socket

import structlog

from platen.broker_setup.broker_admin import BrokerAdmin, BrokerAdminError, vhost_of
from platen.events.base import is_reserved_login
from platen.events.routing import login_of_broker_user
from platen.job_capture.identity import Desktop, Origin, origin_of, parse_address

log = structlog.get_logger("job-capture.presence")

# The management API's read-only key for job-capture (a `monitoring` broker user).
MONITOR_URL_ENV = "PLATEN_BROKER_MONITOR_URL"
LOOKUP_TIMEOUT = 5.0

_monitor: BrokerAdmin | None = None


def is_desktop_user(name: str) -> bool:
    return not is_reserved_login(name)


async def start(rt) -> None:
    """on_ready hook: connect to the management API if job-capture has a key to it."""
    global _monitor
    url = os.environ.get(MONITOR_URL_ENV)
    if not url:
        log.warning(
            "desktop presence is unknown: every job on a desktop queue will be asked about",
            missing=MONITOR_URL_ENV,
        )
        return
    _monitor = BrokerAdmin(url, vhost_of(rt.settings.amqp_url), timeout=5)


def monitored() -> bool:
    """Whether job-capture can see the desktops connected (it has the monitoring key)."""
    return _monitor is not None


async def desktops() -> list[Desktop] | None:
    """Every desktop connected to this Platen's vhost now; None when unknown."""
    if _monitor is None:
        return None
    try:
        peers = await _monitor.peers()
    except BrokerAdminError as exc:
        log.warning("desktop presence unknown", error=str(exc))
        return None
    found = []
    for user, peer in peers:
        address = parse_address(peer)
        if address is not None and is_desktop_user(user):
            # A desktop signed in as `alice~pc1` is alice's.
            found.append(Desktop(login_of_broker_user(user), address))
    return found


async def origin(host: str | None) -> Origin | None:
    """The job's origin as addresses: a host name is resolved (numbers stay numbers)."""
    if not host or parse_address(host) is not None or origin_of(host) is not None:
        return origin_of(host)
    try:
        infos = await asyncio.wait_for(
            asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM),
            LOOKUP_TIMEOUT,
        )
    except (OSError, TimeoutError) as exc:
        log.info("origin host not resolved", host=host, error=str(exc))
        return None
    return origin_of(host, [str(info[4][0]) for info in infos])
