"""Installing Platen on a broker: the whole topology, and a broker user for each service
and for `platenctl`, each with only its own permissions. Print servers get one each
later, by name (`platenctl printserver add`, `platen.broker_setup.print_servers`).

Run once per installation (and again after an upgrade; every step is idempotent) with the
credentials of a broker administrator. It returns the URL each identity signs in with;
`platenctl broker setup` writes them to owner-only environment files.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from platen.broker_setup import broker_limits, permissions
from platen.broker_setup.broker_admin import BrokerAdmin, new_password, vhost_of
from platen.events.discovery import with_login
from platen.messaging import discovery
from platen.messaging.senders import ADMIN_USER, service_user
from platen.messaging.topology import all_queues, declare_all

# The broker user all print servers once shared: removed by the installer, since a print
# server now signs in as itself and job-capture refuses CUPS jobs from anyone else.
LEGACY_PRINT_SERVER = "platen-print-server"
# The notification service's key to the management API: it creates and removes desktop
# users. An administrator of the broker's HTTP API, with no AMQP permissions at all.
IDENTITY_MANAGER = "platen-identity-manager"
# job-capture's key to the management API: it reads which desktops are connected from
# where (identity at print). A `monitoring` user: it sees connections, changes nothing,
# and may neither publish nor read nor declare anything.
PRESENCE_MONITOR = "platen-presence-monitor"


def with_credentials(url: str, user: str, password: str) -> str:
    # The URL may name several broker nodes (a cluster), which urllib cannot take apart.
    return with_login(url, user, password)


@dataclass(frozen=True)
class Installed:
    urls: dict[str, str]  # identity (a service name, "admin") -> AMQP URL
    identity_manager_url: str  # the management API, for the notification service
    presence_monitor_url: str = ""  # the management API, read-only, for job-capture


# The presence monitor's rights on the vhost: access (to see its connections) with no
# right on anything in it.
MONITOR_RIGHTS = permissions.Permissions()


def identity_rights(user_prefix: str = "") -> dict[str, tuple[str, permissions.Permissions]]:
    """Each AMQP identity the installer issues (a service name, "admin"): its broker user
    and the rights that user gets on the vhost."""
    identities = {
        s: (user_prefix + service_user(s), permissions.service(s, user_prefix + service_user(s)))
        for s in discovery.specs()
    }
    identities["admin"] = (user_prefix + ADMIN_USER, permissions.admin(user_prefix + ADMIN_USER))
    return identities


async def unbind_dropped(admin: BrokerAdmin) -> list[tuple[str, str]]:
    """Remove the bindings of Platen's queues that this version no longer declares (a
    consumer that gave up an event), so that the event is not delivered to a queue whose
    service has no handler for it, which would dead-letter each one. Only the keys
    derived from the services' subscriptions are touched: a queue of replies (bound by
    its service under its own key) and the replay exchange's bindings are left alone.
    The (queue, key) pairs removed."""
    removed = []
    for queue in all_queues().values():
        if not queue.routing_keys:
            continue
        bound = await admin.bindings(queue.exchange, queue.name)
        for key, name in bound.items():
            if key not in queue.routing_keys:
                await admin.unbind(queue.exchange, queue.name, name)
                removed.append((queue.name, key))
    return removed


async def install(
    amqp_url: str,
    management_url: str,
    *,
    disable_guest: bool,
    user_prefix: str = "",
    passwords: Callable[[str], str] | None = None,
) -> Installed:
    """Declare the topology and (re)issue every Platen identity on the vhost of
    `amqp_url`. `user_prefix` keeps several installations' broker users apart on one
    broker. `passwords` gives a broker user's password; without it they are new each
    time and the returned URLs replace the old ones. An installer that runs again while
    the services run (the compose stack's init at every `up`) keeps them: a running
    service holds its password and needs it again whenever it reconnects."""
    password_for = passwords or (lambda _user: new_password())
    await declare_all(amqp_url)
    identities = identity_rights(user_prefix)
    urls = {}
    async with BrokerAdmin(management_url, vhost_of(amqp_url)) as admin:
        await unbind_dropped(admin)
        await broker_limits.apply(admin)
        for key, (user, perms) in identities.items():
            password = password_for(user)
            await admin.set_password(user, password)
            await admin.grant(user, perms)
            urls[key] = with_credentials(amqp_url, user, password)
        manager_user = user_prefix + IDENTITY_MANAGER
        password = password_for(manager_user)
        await admin.set_password(manager_user, password, tags="administrator")
        manager = with_credentials(admin.base_url, manager_user, password)
        await admin.delete_user(user_prefix + LEGACY_PRINT_SERVER)
        monitor_user = user_prefix + PRESENCE_MONITOR
        password = password_for(monitor_user)
        await admin.set_password(monitor_user, password, tags="monitoring")
        await admin.grant(monitor_user, MONITOR_RIGHTS)
        monitor = with_credentials(admin.base_url, monitor_user, password)
        if disable_guest:
            # The broker's default user can do anything and its password is known to all.
            await admin.delete_user("guest")
    return Installed(urls, manager, monitor)
