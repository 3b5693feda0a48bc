"""Broker identities for a test's Platen: each service, the admin CLI and the print server
sign in as themselves, with only their own permissions, over TLS when the broker has it.

The broker users are made once per broker with random passwords; each test grants them
their permissions on its own vhost.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

import httpx

from platen.messaging import permissions
from platen.messaging.installation import with_credentials
from platen.messaging.permissions import Permissions
from platen.messaging.topology import SERVICES
from platen.testing.infra import Infra
from platen.testing.isolation import with_vhost

# Named apart from what `platenctl broker setup` creates, whose tests renew those passwords.
ADMIN = "test-platen-admin"
PRINT_SERVER = "test-platen-print-server"


def service_user(service: str) -> str:
    return f"test-platen-{service}"


@dataclass
class Identities:
    """The broker users of one broker, and how to grant them a vhost."""

    infra: Infra
    passwords: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        parts = urlsplit(self.infra.amqp_url)
        self.http = httpx.Client(
            base_url=self.infra.management_url,
            auth=(parts.username or "guest", parts.password or "guest"),
            timeout=30,
        )

    @property
    def management_url(self) -> str:
        """The management API with administrator credentials (for the notification
        service, which manages the desktop users)."""
        parts = urlsplit(self.infra.amqp_url)
        return with_credentials(
            self.infra.management_url, parts.username or "guest", parts.password or "guest"
        )

    def _user(self, name: str) -> str:
        if name not in self.passwords:
            self.passwords[name] = secrets.token_urlsafe(16)
            self.http.put(
                f"/api/users/{name}", json={"password": self.passwords[name], "tags": ""}
            ).raise_for_status()
        return self.passwords[name]

    def grant(self, vhost: str, name: str, perms: Permissions) -> str:
        """Grant `name` its permissions on `vhost`; the URL it signs in with."""
        password = self._user(name)
        v = quote(vhost, safe="")
        self.http.put(
            f"/api/permissions/{v}/{name}",
            json={"configure": perms.configure, "write": perms.write, "read": perms.read},
        ).raise_for_status()
        for topic in perms.topics:
            self.http.put(
                f"/api/topic-permissions/{v}/{name}",
                json={"exchange": topic.exchange, "write": topic.write, "read": topic.read},
            ).raise_for_status()
        base = self.infra.amqps_url or self.infra.amqp_url
        return with_credentials(with_vhost(base, vhost), name, password)

    def for_vhost(self, vhost: str) -> VhostIdentities:
        return VhostIdentities(
            services={
                s: self.grant(vhost, service_user(s), permissions.service(s)) for s in SERVICES
            },
            admin=self.grant(vhost, ADMIN, permissions.admin()),
            print_server=self.grant(vhost, PRINT_SERVER, permissions.print_server()),
            management_url=self.management_url,
            tls=self.infra.amqps_url is not None,
        )

    def desktop_url(self, vhost: str, login: str, password: str) -> str:
        base = self.infra.amqps_url or self.infra.amqp_url
        return with_credentials(with_vhost(base, vhost), login, password)


@dataclass(frozen=True)
class VhostIdentities:
    services: dict[str, str]  # service name -> its AMQP URL
    admin: str
    print_server: str
    management_url: str
    tls: bool
