"""Broker identities for a test's Platen: each service, the admin CLI and each print server
sign in as themselves, with only their own permissions, over TLS when the broker has it.

Each test installs Platen on its vhost as `platenctl broker setup` would, with the broker
users named apart (`test-platen-...`) from those the installer's own tests renew.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlsplit

from platen.broker_setup import print_servers
from platen.broker_setup.broker_admin import BrokerAdmin
from platen.broker_setup.installation import install, with_credentials
from platen.testing.infra import Infra
from platen.testing.isolation import with_vhost

USER_PREFIX = "test-"


@dataclass
class Identities:
    """Installs Platen's identities on a test broker's vhosts."""

    infra: Infra

    @property
    def _base(self) -> str:
        return self.infra.amqps_url or self.infra.amqp_url

    def _management_url(self) -> str:
        parts = urlsplit(self.infra.amqp_url)
        return with_credentials(
            self.infra.management_url, parts.username or "guest", parts.password or "guest"
        )

    def for_vhost(self, vhost: str, user_prefix: str = USER_PREFIX) -> VhostIdentities:
        """Declare the topology on `vhost` and issue every identity there.

        Broker users are broker-wide: issuing them again (the next test's system) changes
        their passwords. A system that must outlive another's start (a module's shared
        system) has users of its own, under a `user_prefix` of its own, removed after it
        (`remove_users`)."""
        setup = install(
            with_vhost(self._base, vhost),
            self._management_url(),
            disable_guest=False,
            user_prefix=user_prefix,
        )
        installed = _run(setup)
        urls = dict(installed.urls)
        return VhostIdentities(
            admin=urls.pop("admin"),
            services=urls,
            management_url=installed.identity_manager_url,
            monitor_url=installed.presence_monitor_url,
            user_prefix=user_prefix,
        )

    def print_server_url(self, vhost: str, name: str, user_prefix: str = USER_PREFIX) -> str:
        """Issue print server `name` its own identity on `vhost`, as `platenctl printserver
        add` has the notification service do; the URL it signs in with."""

        async def issue() -> tuple[str, str]:
            async with BrokerAdmin(self._management_url(), vhost) as admin:
                return await print_servers.issue(admin, name, user_prefix)

        user, password = _run(issue())
        return with_credentials(with_vhost(self._base, vhost), user, password)

    def remove_users(self, user_prefix: str) -> None:
        """Delete every broker user under `user_prefix` (one system's own, not the
        shared `test-` ones, which the next system renews)."""
        if not user_prefix.startswith(USER_PREFIX) or user_prefix == USER_PREFIX:
            raise ValueError(f"not a system's own user prefix: {user_prefix!r}")

        async def remove() -> None:
            async with BrokerAdmin(self._management_url(), "/") as admin:
                users = (await admin.http.get("/api/users")).json()
                for user in users:
                    if user["name"].startswith(user_prefix):
                        await admin.delete_user(user["name"])

        _run(remove())

    def desktop_url(self, vhost: str, login: str, password: str) -> str:
        return with_credentials(with_vhost(self._base, vhost), login, password)


@dataclass(frozen=True)
class VhostIdentities:
    services: dict[str, str]  # service name -> its AMQP URL
    admin: str
    management_url: str  # the identity manager's, for the notification service
    monitor_url: str = ""  # the presence monitor's (read-only), for job-capture
    user_prefix: str = USER_PREFIX  # what its broker users' names start with


def _run(coro):
    with ThreadPoolExecutor(1) as pool:  # the caller may be inside an event loop
        return pool.submit(asyncio.run, coro).result()
