"""Broker identities through RabbitMQ's management API: users, their permissions, their
connections.

Used by the notification service to keep one broker user per desktop user, and by the
deployment scripts and tests to give each service its own identity. Passwords are sent to
the broker, which keeps only a salted hash; nothing here logs or stores them.
"""

from __future__ import annotations

import secrets
import ssl
from dataclasses import asdict, dataclass, field
from urllib.parse import quote, unquote, urlsplit

import httpx

from platen.broker_setup.permissions import Permissions
from platen.events.routing import DESKTOP_SEPARATOR
from platen.operations.management_url import nodes, split_credentials


class BrokerAdminError(RuntimeError):
    pass


def peer_of(connection_name: str) -> str | None:
    """The peer address in a connection's broker-made name, `PEER:PORT -> HOST:PORT`
    (an IPv6 address unbracketed, hence the last colon); None for another shape."""
    peer, arrow, _ = connection_name.partition(" -> ")
    host, colon, port = peer.rpartition(":")
    return host if arrow and colon and host and port.isdigit() else None


def new_password() -> str:
    return secrets.token_urlsafe(24)


def vhost_of(amqp_url: str) -> str:
    """The vhost an AMQP URL names ("/" when it names none)."""
    path = urlsplit(amqp_url).path
    return unquote(path[1:]) if len(path) > 1 else "/"


def _q(name: str) -> str:
    return quote(name, safe="")


@dataclass
class Snapshot:
    """What the broker has for every user at once (four calls, whatever the number of
    users): so that a reconciliation of thousands of identities writes only what differs,
    instead of some ten calls each."""

    users: set[str] = field(default_factory=set)
    permissions: dict[str, dict[str, str]] = field(default_factory=dict)  # on the vhost
    topics: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)
    limits: dict[str, dict[str, int]] = field(default_factory=dict)
    _desktops: dict[str, set[str]] | None = field(default=None, repr=False, compare=False)

    def has(self, name: str, permissions: Permissions) -> bool:
        """Whether user `name` exists with exactly these permissions, topic permissions
        and limits."""
        limits = {
            k: v
            for k, v in (
                ("max-connections", permissions.max_connections),
                ("max-channels", permissions.max_channels),
            )
            if v is not None
        }
        topics = {t.exchange: {"write": t.write, "read": t.read} for t in permissions.topics}
        vhost = {k: getattr(permissions, k) for k in ("configure", "write", "read")}
        return (
            name in self.users
            and self.permissions.get(name) == vhost
            and self.topics.get(name, {}) == topics
            and self.limits.get(name, {}) == limits
        )

    def has_none(self, name: str) -> bool:
        """Whether user `name` holds no permission on the vhost."""
        return name not in self.permissions and not self.topics.get(name)

    def signed_in_desktops_of(self, login: str) -> set[str]:
        """The broker users `<login>~<desktop>` that hold rights on the vhost."""
        if self._desktops is None:
            self._desktops = {}
            for name in (*self.permissions, *self.topics):
                owner, separator, _ = name.partition(DESKTOP_SEPARATOR)
                if separator:
                    self._desktops.setdefault(owner, set()).add(name)
        return self._desktops.get(login, set())


def tls_for(nodes: list[str]) -> ssl.SSLContext | bool:
    """What a management API client verifies HTTPS peers with: httpx's default (its CA
    bundle) when a node is reached over HTTPS. With every node on plain HTTP there is no peer
    to verify, yet httpx would load the whole bundle into a context for each client (31 ms
    of CPU and 0.8 MB here, at every service's start and every test system's); a context
    that trusts no certificate costs neither, and refuses every TLS peer should one ever
    be reached."""
    if any(urlsplit(node).scheme != "http" for node in nodes):
        return True
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies, and trusts nothing


class BrokerAdmin:
    """The management API of one broker, acting on one vhost."""

    def __init__(self, management_url: str, vhost: str, *, timeout: float = 15) -> None:
        base, auth = split_credentials(management_url)
        self.vhost = vhost
        self.base_url = base  # every node, without credentials
        self.nodes = nodes(management_url)
        self._node = 0  # the node that answered last: asked first next time
        self.http = httpx.AsyncClient(
            base_url=self.nodes[0], auth=auth, timeout=timeout, verify=tls_for(self.nodes)
        )

    async def close(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> BrokerAdmin:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def _send(self, method: str, path: str, **kw) -> httpx.Response:
        """`method path` on the first node that answers, starting with the last one that
        did: in a cluster, identities are still issued and revoked while a node is down.
        Only a node that cannot be reached is passed over; any answer is the answer (every
        node serves the same users and permissions)."""
        failure: httpx.TransportError | None = None
        for step in range(len(self.nodes)):
            at = (self._node + step) % len(self.nodes)
            try:
                r = await self.http.request(method, self.nodes[at] + path, **kw)
            except httpx.TransportError as exc:
                failure = exc
                continue
            self._node = at
            return r
        assert failure is not None
        raise failure

    async def _call(self, method: str, path: str, **kw) -> httpx.Response:
        try:
            r = await self._send(method, path, **kw)
        except httpx.HTTPError as exc:
            raise BrokerAdminError(f"broker management API unreachable: {exc}") from exc
        if r.status_code >= 400 and not (method == "DELETE" and r.status_code == 404):
            # The body never holds a password: the API does not echo what it was sent.
            raise BrokerAdminError(f"{method} {path}: {r.status_code} {r.text[:200]}")
        return r

    async def user_exists(self, name: str) -> bool:
        r = await self._send("GET", f"/api/users/{_q(name)}")
        if r.status_code == 404:
            return False
        if r.status_code >= 400:
            raise BrokerAdminError(f"GET user {name}: {r.status_code}")
        return True

    async def ensure_user(self, name: str, *, tags: str = "") -> bool:
        """Create `name` with a password nobody knows unless it exists; True if created.

        An existing user keeps its password: this runs again whenever an event is
        redelivered, and must not sign anybody out.
        """
        if await self.user_exists(name):
            return False
        await self.set_password(name, new_password(), tags=tags)
        return True

    async def set_password(self, name: str, password: str, *, tags: str = "") -> None:
        await self._call("PUT", f"/api/users/{_q(name)}", json={"password": password, "tags": tags})

    async def delete_user(self, name: str) -> None:
        await self._call("DELETE", f"/api/users/{_q(name)}")

    async def grant(self, name: str, permissions: Permissions) -> None:
        """Set exactly these permissions on the vhost (topic permissions replaced too).

        RabbitMQ reads "no topic permission on an exchange" as "every routing key allowed",
        so the order matters: the user must never hold the right to write to an exchange
        without the limits on what it may write there. Topic permissions are set first, then
        the vhost's; and when one must go (RabbitMQ drops them only all at once), the vhost
        rights are taken away first, so that meanwhile the user may do nothing at all.
        """
        v, u = _q(self.vhost), _q(name)
        await self._set_limits(name, permissions)
        wanted = {topic.exchange for topic in permissions.topics}
        if await self._topic_exchanges(name) - wanted:
            await self._call("DELETE", f"/api/permissions/{v}/{u}")
            await self._call("DELETE", f"/api/topic-permissions/{v}/{u}")
        for topic in permissions.topics:  # each PUT replaces that exchange's limits at once
            await self._call("PUT", f"/api/topic-permissions/{v}/{u}", json=asdict(topic))
        await self._call(
            "PUT",
            f"/api/permissions/{v}/{u}",
            json={
                "configure": permissions.configure,
                "write": permissions.write,
                "read": permissions.read,
            },
        )

    async def _set_limits(self, name: str, permissions: Permissions) -> None:
        """The user's connection and channel limits (set before any right is granted)."""
        for limit, value in (
            ("max-connections", permissions.max_connections),
            ("max-channels", permissions.max_channels),
        ):
            path = f"/api/user-limits/{_q(name)}/{limit}"
            if value is None:
                await self._call("DELETE", path)
            else:
                await self._call("PUT", path, json={"value": value})

    async def limits(self, name: str) -> dict[str, int]:
        r = await self._call("GET", f"/api/user-limits/{_q(name)}")
        found = r.json()
        return dict(found[0]["value"]) if found else {}

    async def set_policy(self, name: str, pattern: str, definition: dict, *, priority: int) -> None:
        """A queue policy on this vhost (replaced if it exists)."""
        await self._call(
            "PUT",
            f"/api/policies/{_q(self.vhost)}/{_q(name)}",
            json={
                "pattern": pattern,
                "definition": definition,
                "priority": priority,
                "apply-to": "queues",
            },
        )

    async def _topic_exchanges(self, name: str) -> set[str]:
        """The exchanges on which `name` has topic permissions in this vhost."""
        r = await self._send("GET", f"/api/topic-permissions/{_q(self.vhost)}/{_q(name)}")
        if r.status_code == 404:
            return set()
        if r.status_code >= 400:
            raise BrokerAdminError(f"GET topic permissions of {name}: {r.status_code}")
        return {entry["exchange"] for entry in r.json()}

    async def revoke(self, name: str) -> None:
        """Take away every permission on the vhost: the user can sign in to nothing here."""
        v, u = _q(self.vhost), _q(name)
        await self._call("DELETE", f"/api/permissions/{v}/{u}")
        await self._call("DELETE", f"/api/topic-permissions/{v}/{u}")

    async def permissions(self, name: str) -> dict | None:
        r = await self._send("GET", f"/api/permissions/{_q(self.vhost)}/{_q(name)}")
        if r.status_code == 404:
            return None
        r.raise_for_status()
        return r.json()

    async def vhost_permissions(self) -> dict[str, dict[str, str]]:
        """Every user's (configure, write, read) expressions on this vhost, by user."""
        r = await self._call("GET", f"/api/vhosts/{_q(self.vhost)}/permissions")
        return {p["user"]: {k: p[k] for k in ("configure", "write", "read")} for p in r.json()}

    async def topic_permissions(self, name: str) -> dict[str, dict[str, str]]:
        """`name`'s topic permissions on this vhost: exchange -> its write and read."""
        r = await self._send("GET", f"/api/topic-permissions/{_q(self.vhost)}/{_q(name)}")
        if r.status_code == 404:
            return {}
        if r.status_code >= 400:
            raise BrokerAdminError(f"GET topic permissions of {name}: {r.status_code}")
        return {t["exchange"]: {"write": t["write"], "read": t["read"]} for t in r.json()}

    async def snapshot(self) -> Snapshot:
        v = _q(self.vhost)
        users = (await self._call("GET", "/api/users", params={"columns": "name"})).json()
        topics: dict[str, dict[str, dict[str, str]]] = {}
        for t in (await self._call("GET", f"/api/vhosts/{v}/topic-permissions")).json():
            topics.setdefault(t["user"], {})[t["exchange"]] = {
                "write": t["write"],
                "read": t["read"],
            }
        limits = (await self._call("GET", "/api/user-limits")).json()
        return Snapshot(
            users={u["name"] for u in users},
            permissions=await self.vhost_permissions(),
            topics=topics,
            limits={entry["user"]: dict(entry["value"]) for entry in limits},
        )

    async def bindings(self, exchange: str, queue: str) -> dict[str, str]:
        """The routing keys `queue` is bound under on `exchange`, each with the name the
        API gives that binding (its properties key)."""
        v, e, q = _q(self.vhost), _q(exchange), _q(queue)
        r = await self._call("GET", f"/api/bindings/{v}/e/{e}/q/{q}")
        return {b["routing_key"]: b["properties_key"] for b in r.json()}

    async def unbind(self, exchange: str, queue: str, properties_key: str) -> None:
        v, e, q = _q(self.vhost), _q(exchange), _q(queue)
        await self._call("DELETE", f"/api/bindings/{v}/e/{e}/q/{q}/{_q(properties_key)}")

    async def connections_of(self, name: str) -> list[str]:
        # The per-user list comes from the broker's connection tracking, current at once;
        # the per-vhost list is built from statistics that lag by seconds.
        r = await self._call("GET", f"/api/connections/username/{_q(name)}")
        return [c["name"] for c in r.json()]

    async def peers(self) -> list[tuple[str, str]]:
        """(broker user, peer address) of every connection on this vhost: what the broker
        authenticated and the socket's far end, nothing the client said about itself.
        (Needs only the `monitoring` tag.)

        Read from the broker's connection tracking (`disable_stats`), not its statistics:
        the per-vhost list gathers every connection's statistics first, 6.6 to 28 s at
        10,000 desktops (bench/README.md, `desktops.py`). A tracked connection has its
        user and the name the broker gave it from its socket, `PEER:PORT -> HOST:PORT`
        (the name a client chooses is another field, `user_provided_name`, not listed
        there). The vhost endpoint has no such option: every vhost's are filtered here."""
        r = await self._call("GET", "/api/connections", params={"disable_stats": "true"})
        found = []
        for c in r.json():
            peer = peer_of(c.get("name") or "")
            if c.get("vhost") == self.vhost and c.get("user") and peer:
                found.append((c["user"], peer))
        return found

    async def disconnect(self, name: str, reason: str = "signed out by Platen") -> int:
        """Close every connection `name` has open (on any vhost: a broker user is one
        person); how many there were."""
        count = len(await self.connections_of(name))
        if count:
            await self._call(
                "DELETE", f"/api/connections/username/{_q(name)}", headers={"X-Reason": reason}
            )
        return count
