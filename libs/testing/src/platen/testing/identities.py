"""Broker identities for a test's Platen: each service, the admin CLI and each print server
sign in as themselves, with only their own permissions, over TLS when the broker has it.

The first system on a worker installs Platen on its vhost as `platenctl broker setup`
would, with the broker users named apart (`test-platen-...`) from those the installer's own
tests renew. Every later vhost gets the same users, with the same passwords, and the same
rights on it as the installer gives: issuing the users again for each test (seven users,
some sixty calls to the management API) was a third of a system's set-up.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from urllib.parse import urlsplit

import httpx

from platen.broker_setup import broker_limits, print_servers
from platen.broker_setup.broker_admin import BrokerAdmin, tls_for
from platen.broker_setup.installation import (
    MONITOR_RIGHTS,
    PRESENCE_MONITOR,
    Installed,
    identity_rights,
    install,
    with_credentials,
)
from platen.messaging.topology import declare_all
from platen.operations.management_url import split_credentials
from platen.testing.infra import Infra
from platen.testing.isolation import with_vhost

USER_PREFIX = "test-"
# A module's shared system's users (tests/conftest.py, `module_system`).
SHARED_USER_PREFIX = "test-shared-"


@dataclass
class Identities:
    """Installs Platen's identities on a test broker's vhosts."""

    infra: Infra
    # What the first installation under each user prefix issued on this broker.
    _installed: dict[str, Installed] = field(default_factory=dict)

    @property
    def _base(self) -> str:
        return self.infra.amqps_url or self.infra.amqp_url

    def _management_url(self) -> str:
        parts = urlsplit(self.infra.amqp_url)
        return with_credentials(
            self.infra.management_url, parts.username or "guest", parts.password or "guest"
        )

    def for_vhost(self, vhost: str, user_prefix: str = USER_PREFIX) -> VhostIdentities:
        """Declare the topology on `vhost` and give every identity its rights there.

        The first time under `user_prefix`, as the installer does (users, passwords,
        rights, policies); after that the users and passwords stay and only the new
        `vhost` gets the rights and policies (`_grant`). Since no password changes, two
        systems on one worker may run at once; they still use different prefixes (the
        own systems `test-`, a module's shared one another), because print servers of the
        same name would sign each other out (`print_servers.issue` disconnects)."""
        installed = self._installed.get(user_prefix)
        if installed is None:
            setup = install(
                with_vhost(self._base, vhost),
                self._management_url(),
                disable_guest=False,
                user_prefix=user_prefix,
            )
            installed = self._installed[user_prefix] = _run(setup)
        else:
            _run(self._grant(vhost, user_prefix))
        urls = {key: with_vhost(url, vhost) for key, url in installed.urls.items()}
        return VhostIdentities(
            admin=urls.pop("admin"),
            services=urls,
            management_url=installed.identity_manager_url,
            monitor_url=installed.presence_monitor_url,
            user_prefix=user_prefix,
        )

    async def _grant(self, vhost: str, user_prefix: str) -> None:
        """On a fresh `vhost`: the topology, and the rights and queue policies `install`
        gives, in one import of definitions instead of some forty calls. (The installer
        sets topic permissions before a user's vhost rights, so that a connected user is
        never without its limits; nobody can be connected to a vhost made a moment ago.)
        `libs/testing/tests/test_identities.py` checks they are the installer's."""
        await declare_all(with_vhost(self._base, vhost))
        rights = dict(identity_rights(user_prefix).values())
        rights[user_prefix + PRESENCE_MONITOR] = MONITOR_RIGHTS
        definitions = {
            "permissions": [
                {"user": user, "vhost": vhost, **_vhost_rights(granted)}
                for user, granted in rights.items()
            ],
            "topic_permissions": [
                {"user": user, "vhost": vhost, **asdict(topic)}
                for user, granted in rights.items()
                for topic in granted.topics
            ],
            "policies": [
                {
                    "vhost": vhost,
                    "name": policy.name,
                    "pattern": policy.pattern,
                    "definition": policy.definition,
                    "priority": broker_limits.PRIORITY,
                    "apply-to": "queues",
                }
                for policy in broker_limits.POLICIES
            ],
        }
        base, auth = split_credentials(self._management_url())
        async with httpx.AsyncClient(
            base_url=base, auth=auth, timeout=30, verify=tls_for([base])
        ) as http:
            (await http.post("/api/definitions", json=definitions)).raise_for_status()

    def print_server_url(self, vhost: str, name: str, user_prefix: str = USER_PREFIX) -> str:
        """Issue print server `name` its own identity on `vhost`, as `platenctl printserver
        add` has the notification service do; the URL it signs in with."""

        async def issue() -> tuple[str, str]:
            async with BrokerAdmin(self._management_url(), vhost) as admin:
                return await print_servers.issue(admin, name, user_prefix)

        user, password = _run(issue())
        return with_credentials(with_vhost(self._base, vhost), user, password)

    def desktop_url(self, vhost: str, login: str, password: str) -> str:
        return with_credentials(with_vhost(self._base, vhost), login, password)


@dataclass(frozen=True)
class VhostIdentities:
    services: dict[str, str]  # service name -> its AMQP URL
    admin: str
    management_url: str  # the identity manager's, for the notification service
    monitor_url: str = ""  # the presence monitor's (read-only), for job-capture
    user_prefix: str = USER_PREFIX  # what its broker users' names start with


def _vhost_rights(granted) -> dict[str, str]:
    return {"configure": granted.configure, "write": granted.write, "read": granted.read}


def _run(coro):
    with ThreadPoolExecutor(1) as pool:  # the caller may be inside an event loop
        return pool.submit(asyncio.run, coro).result()
