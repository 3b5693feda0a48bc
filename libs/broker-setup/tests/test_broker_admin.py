"""Broker identities applied to a real RabbitMQ: what a desktop user may and may not do."""

import asyncio
import json
import socket
import ssl
import uuid
from urllib.parse import quote, urlsplit, urlunsplit

import aio_pika
import httpx
import pytest
from aiormq.exceptions import (
    AMQPConnectionError,
    ChannelAccessRefused,
    ChannelPreconditionFailed,
    InvalidFrameError,
    ProbableAuthenticationError,
)

from platen.broker_setup import permissions
from platen.broker_setup.broker_admin import BrokerAdmin, BrokerAdminError, tls_for
from platen.events.routing import desktop_queue
from platen.messaging.topology import declare_desktop_queue
from platen.operations import health


def _as(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{parts.hostname}:{parts.port}"))


@pytest.fixture
async def admin(infra, vhost):
    user, password = urlsplit(infra.amqp_url).username, urlsplit(infra.amqp_url).password
    mgmt = urlsplit(infra.management_url)
    url = urlunsplit(mgmt._replace(netloc=f"{user}:{password}@{mgmt.hostname}:{mgmt.port}"))
    async with BrokerAdmin(url, vhost[0]) as a:
        yield a


@pytest.fixture
async def desktop(admin, amqp_url, channel):
    login = f"u{uuid.uuid4().hex[:8]}"
    await admin.set_password(login, "secret-1")
    await admin.grant(login, permissions.desktop_user(login))
    await declare_desktop_queue(channel, login)
    await declare_desktop_queue(channel, "someone-else")
    yield login, _as(amqp_url, login, "secret-1")
    await admin.delete_user(login)


async def _channel(url):
    conn = await aio_pika.connect(url)
    return conn, await conn.channel(publisher_confirms=True)


async def test_a_desktop_reads_its_queue_and_replies_as_itself(desktop, channel):
    login, url = desktop
    await channel.default_exchange.publish(
        aio_pika.Message(b"prompt"), routing_key=f"desktop.{login}"
    )
    conn, ch = await _channel(url)
    async with conn:
        q = await ch.get_queue(f"desktop.{login}", ensure=False)
        got = await q.get(timeout=5)
        assert got.body == b"prompt"
        replies = await ch.get_exchange("platen.desktop.replies", ensure=False)
        await replies.publish(
            aio_pika.Message(b"{}", user_id=login), routing_key=f"user.{login}.answer"
        )


async def test_each_desktop_of_a_user_gets_every_message_and_reads_no_other_queue(
    admin, amqp_url, channel, desktop
):
    """Two desktops signed in as the same user: each its own queue, both get the message
    (one shared queue would hand it to one of them only); neither may read the other's."""
    login, own_url = desktop
    urls = {}
    for pc in ("pc1", "pc2"):
        identity = f"{login}~{pc}"
        await admin.set_password(identity, f"secret-{pc}")
        await admin.grant(identity, permissions.desktop_user(identity))
        await declare_desktop_queue(channel, identity)
        urls[identity] = _as(amqp_url, identity, f"secret-{pc}")
    try:
        desktop_exchange = await channel.get_exchange("platen.desktop")
        await desktop_exchange.publish(
            aio_pika.Message(b"balance"), routing_key=f"user.{login}.balance"
        )
        for identity, url in urls.items():
            conn, ch = await _channel(url)
            async with conn:
                q = await ch.get_queue(desktop_queue(identity), ensure=False)
                assert (await q.get(timeout=5)).body == b"balance"
        # The administrator-issued credential's queue has it too.
        conn, ch = await _channel(own_url)
        async with conn:
            q = await ch.get_queue(f"desktop.{login}", ensure=False)
            assert (await q.get(timeout=5)).body == b"balance"
        for identity, other in ((f"{login}~pc1", f"{login}~pc2"), (f"{login}~pc2", login)):
            conn, ch = await _channel(urls[identity])
            async with conn:
                with pytest.raises(ChannelAccessRefused):
                    q = await ch.get_queue(desktop_queue(other), ensure=False)
                    await q.get(fail=False)
    finally:
        for identity in urls:
            await admin.delete_user(identity)
            await channel.queue_delete(desktop_queue(identity))


@pytest.mark.parametrize(
    "attempt",
    [
        "read another user's queue",
        "bind to platen.events",
        "declare a queue",
        "delete its queue",
        "publish to platen.events",
        "publish to platen.commands",
        "reply with another user's key",
        "publish to the default exchange",
    ],
)
async def test_a_desktop_is_refused(desktop, attempt):
    login, url = desktop
    conn, ch = await _channel(url)
    async with conn:
        with pytest.raises(ChannelAccessRefused):
            if attempt == "read another user's queue":
                q = await ch.get_queue("desktop.someone-else", ensure=False)
                await q.get(fail=False)
            elif attempt == "bind to platen.events":
                q = await ch.get_queue(f"desktop.{login}", ensure=False)
                await q.bind("platen.events", "#")
            elif attempt == "declare a queue":
                await ch.declare_queue("sneaky", exclusive=True)
            elif attempt == "delete its queue":
                q = await ch.get_queue(f"desktop.{login}", ensure=False)
                await q.delete(if_unused=False, if_empty=False)
            elif attempt == "publish to platen.events":
                ex = await ch.get_exchange("platen.events", ensure=False)
                await ex.publish(aio_pika.Message(b"{}"), routing_key="job.printed")
            elif attempt == "publish to platen.commands":
                ex = await ch.get_exchange("platen.commands", ensure=False)
                await ex.publish(aio_pika.Message(b"{}"), routing_key="ledger.topup")
            elif attempt == "reply with another user's key":
                ex = await ch.get_exchange("platen.desktop.replies", ensure=False)
                await ex.publish(aio_pika.Message(b"{}"), routing_key="user.someone-else.answer")
            else:
                await ch.default_exchange.publish(
                    aio_pika.Message(b"{}"), routing_key="desktop.someone-else"
                )


async def test_a_desktop_cannot_spoof_user_id(desktop):
    login, url = desktop
    conn, ch = await _channel(url)
    async with conn:
        ex = await ch.get_exchange("platen.desktop.replies", ensure=False)
        with pytest.raises(ChannelPreconditionFailed, match="user_id"):
            await ex.publish(
                aio_pika.Message(b"{}", user_id="someone-else"), routing_key=f"user.{login}.answer"
            )


async def test_a_revoked_user_is_disconnected_and_cannot_sign_in_again(admin, desktop):
    login, url = desktop
    conn = await aio_pika.connect(url)
    closed = 0
    await admin.revoke(login)
    for _ in range(50):  # the management API lists a new connection within a second or so
        closed = await admin.disconnect(login)
        if closed:
            break
        await asyncio.sleep(0.2)
    assert closed == 1
    with pytest.raises((ConnectionError, RuntimeError, AMQPConnectionError)):
        for _ in range(50):  # the broker's close frame may still be on its way
            await conn.channel()
            await asyncio.sleep(0.1)
    # RabbitMQ closes the connection at Connection.Open ("access to vhost refused"),
    # which aiormq reports as an unexpected frame.
    with pytest.raises((ProbableAuthenticationError, InvalidFrameError)):
        await aio_pika.connect(url)
    assert await admin.permissions(login) is None


async def test_ensure_user_keeps_an_existing_password(admin, desktop, amqp_url):
    login, url = desktop
    assert await admin.ensure_user(login) is False
    conn = await aio_pika.connect(url)
    await conn.close()


async def test_an_unreachable_management_api_is_a_clear_error(vhost):
    async with BrokerAdmin("http://127.0.0.1:9", vhost[0]) as a:
        with pytest.raises(BrokerAdminError, match="unreachable"):
            await a.set_password("x", "y")


async def test_a_regrant_leaves_exactly_the_new_topic_permissions(admin, desktop):
    login, _ = desktop
    narrower = permissions.Permissions(
        configure=permissions.NOTHING,
        write=permissions.NOTHING,
        read=permissions.NOTHING,
        topics=permissions.desktop_user(login).topics[:1],
    )
    await admin.grant(login, narrower)
    assert await admin._topic_exchanges(login) == {narrower.topics[0].exchange}
    assert (await admin.permissions(login))["write"] == permissions.NOTHING
    await admin.grant(login, permissions.desktop_user(login))
    assert await admin._topic_exchanges(login) == {
        t.exchange for t in permissions.desktop_user(login).topics
    }


class _RecordingBroker:
    """The permission state a management API would hold, checked after every call: the
    user must never hold vhost rights while an exchange that is limited before and after
    the grant (or after it, for a user that had no rights) has no topic permission:
    RabbitMQ would allow every routing key there."""

    def __init__(self, vhost_rights: bool, topics: set[str], final: set[str]) -> None:
        self.vhost_rights, self.topics = vhost_rights, set(topics)
        self.protected = final & topics if vhost_rights else final
        self.open_moments = 0

    def handle(self, request: httpx.Request) -> httpx.Response:
        path, method = request.url.path, request.method
        if path.startswith("/api/topic-permissions/"):
            if method == "GET":
                return httpx.Response(200, json=[{"exchange": e} for e in sorted(self.topics)])
            if method == "DELETE":
                self.topics.clear()
            else:
                self.topics.add(json.loads(request.content)["exchange"])
        elif path.startswith("/api/permissions/"):
            self.vhost_rights = method == "PUT"
        if self.vhost_rights and not self.protected <= self.topics:
            self.open_moments += 1
        return httpx.Response(204)


@pytest.mark.parametrize(
    ("had_rights", "had_topics"),
    [(False, set()), (True, {"platen.desktop.replies"}), (True, {"old.exchange"})],
    ids=["new user", "regrant", "a topic permission to drop"],
)
async def test_a_grant_never_passes_through_allow_all(had_rights, had_topics):
    wanted = permissions.desktop_user("alice")
    final = {t.exchange for t in wanted.topics}
    broker = _RecordingBroker(had_rights, had_topics, final)
    admin = BrokerAdmin("http://broker.invalid:15672", "/")
    admin.http = httpx.AsyncClient(
        base_url="http://broker.invalid:15672", transport=httpx.MockTransport(broker.handle)
    )
    async with admin:
        await admin.grant("alice", wanted)
    assert broker.topics == final and broker.vhost_rights
    assert broker.open_moments == 0


async def test_a_snapshot_tells_which_users_have_exactly_their_rights(admin, desktop):
    login, _ = desktop
    bare = f"bare{uuid.uuid4().hex[:8]}"
    await admin.set_password(bare, "secret-2")
    try:
        found = await admin.snapshot()
        assert {login, bare} <= found.users
        assert found.has(login, permissions.desktop_user(login))
        # Another queue, other limits, or no rights at all: not what it has.
        assert not found.has(login, permissions.desktop_user(f"{login}~pc1"))
        assert not found.has(bare, permissions.desktop_user(bare))
        assert found.has_none(bare) and not found.has_none(login)
    finally:
        await admin.delete_user(bare)


def _a_port_nobody_listens_on() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_a_node_that_is_down_is_passed_over_and_the_next_answers(infra, vhost):
    """A cluster's management URL names every node, as its AMQP URL does: with the first
    node down, identities are still issued, granted, checked and removed through the
    next, which is then asked first; with every node down, it says the API is
    unreachable. The containers' health check takes the same URL."""
    user, password = urlsplit(infra.amqp_url).username, urlsplit(infra.amqp_url).password
    live = urlsplit(infra.management_url)
    down = f"127.0.0.1:{_a_port_nobody_listens_on()}"
    url = f"http://{user}:{password}@{down},{live.hostname}:{live.port}"
    login = f"u{uuid.uuid4().hex[:8]}"
    async with BrokerAdmin(url, vhost[0]) as admin:
        assert admin.nodes == [f"http://{down}", f"http://{live.hostname}:{live.port}"]
        await admin.set_password(login, "secret-1")
        await admin.grant(login, permissions.desktop_user(login))
        assert await admin.user_exists(login)
        assert admin._node == 1  # the node that answered is asked first from now on
        assert (await admin.permissions(login))["read"] == permissions.desktop_user(login).read
        await admin.delete_user(login)
        assert not await admin.user_exists(login)
    # The health check: it reaches the live node and reports the missing consumer,
    # rather than that the management API did not answer.
    amqp = urlsplit(infra.amqp_url)
    service_url = urlunsplit(amqp._replace(path="/" + quote(vhost[0], safe="")))
    assert health.check(service_url, url, ["nobody.consumes.this"], timeout=5) == [
        "no consumer on nobody.consumes.this"
    ]
    nowhere = f"http://{user}:{password}@{down},127.0.0.1:{_a_port_nobody_listens_on()}"
    async with BrokerAdmin(nowhere, vhost[0]) as admin:
        with pytest.raises(BrokerAdminError, match="unreachable"):
            await admin.set_password(login, "secret-2")
    [problem] = health.check(service_url, nowhere, ["x"], timeout=5)
    assert problem.startswith("the broker's management API did not answer")


def test_a_client_of_plain_http_nodes_loads_no_certificate_and_trusts_none():
    # httpx loads its whole CA bundle for every client unless handed a context: 31 ms and
    # 0.8 MB a client, for nothing when no node speaks TLS.
    plain = tls_for(["http://127.0.0.1:15672", "http://10.0.0.2:15672"])
    assert isinstance(plain, ssl.SSLContext)
    assert plain.cert_store_stats()["x509_ca"] == 0
    assert plain.verify_mode == ssl.CERT_REQUIRED and plain.check_hostname
    # A node on HTTPS (or anything but plain HTTP) keeps httpx's verification as it is.
    assert tls_for(["http://127.0.0.1:15672", "https://broker.example:15671"]) is True
    assert tls_for(["https://broker.example:15671"]) is True
