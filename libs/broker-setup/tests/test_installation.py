"""Installing Platen on a real broker: the topology, and identities that can do their job
and nothing else."""

import asyncio
import stat
import subprocess
import sys
import uuid
from urllib.parse import quote, urlsplit, urlunsplit

import aio_pika
import pytest
from aiormq.exceptions import AMQPConnectionError, ChannelAccessRefused, InvalidFrameError

from platen.broker_setup import permissions, print_servers
from platen.broker_setup.broker_admin import BrokerAdmin, vhost_of
from platen.broker_setup.installation import LEGACY_PRINT_SERVER, install, with_credentials
from platen.events.routing import DESKTOP, desktop_key, desktop_queue
from platen.messaging.topology import all_queues, declare_desktop_queue


def _admin_management_url(infra) -> str:
    amqp, mgmt = urlsplit(infra.amqp_url), urlsplit(infra.management_url)
    netloc = f"{amqp.username}:{amqp.password}@{mgmt.hostname}:{mgmt.port}"
    return urlunsplit(mgmt._replace(netloc=netloc))


async def _publish(url: str, exchange: str, key: str) -> None:
    conn = await aio_pika.connect(url)
    async with conn:
        ch = await conn.channel(publisher_confirms=True)
        ex = await ch.get_exchange(exchange, ensure=False)
        await ex.publish(aio_pika.Message(b"{}"), routing_key=key)


async def test_install_declares_everything_and_each_identity_keeps_to_its_part(infra, amqp_url):
    async with BrokerAdmin(_admin_management_url(infra), vhost_of(amqp_url)) as admin:
        # An older installation's print server identity, shared by all print servers.
        await admin.set_password(LEGACY_PRINT_SERVER, "known-to-every-print-server")
    installed = await install(amqp_url, _admin_management_url(infra), disable_guest=False)
    conn = await aio_pika.connect(amqp_url)
    async with conn:
        ch = await conn.channel()
        for name in all_queues():  # passive: fails if the installer did not declare it
            await ch.declare_queue(name, passive=True)
    assert set(installed.urls) >= {"pricing", "account-ledger", "admin"}
    # No identity shared by all print servers: each gets its own (platenctl printserver add).
    assert "print-server" not in installed.urls
    async with BrokerAdmin(_admin_management_url(infra), vhost_of(amqp_url)) as admin:
        assert not await admin.user_exists(LEGACY_PRINT_SERVER)
        user, password = await print_servers.issue(admin, "install-test")
    print_server = with_credentials(amqp_url, user, password)
    await _publish(installed.urls["pricing"], "platen.events", "job.priced")
    with pytest.raises(ChannelAccessRefused):
        await _publish(installed.urls["pricing"], "platen.events", "job.printed")
    await _publish(print_server, "platen.commands", "capture.submit")
    with pytest.raises(ChannelAccessRefused):
        await _publish(print_server, "platen.commands", "ledger.topup")
    with pytest.raises(ChannelAccessRefused):  # a print server cannot make a queue trusted
        await _publish(print_server, "platen.commands", "capture.printer.identity.set")
    await _publish(installed.urls["admin"], "platen.commands", "ledger.topup")
    # Installing again is harmless and renews every password.
    again = await install(amqp_url, _admin_management_url(infra), disable_guest=False)
    assert again.urls["pricing"] != installed.urls["pricing"]
    await _publish(again.urls["pricing"], "platen.events", "job.priced")
    with pytest.raises(AMQPConnectionError):  # the old password is refused
        await _publish(installed.urls["pricing"], "platen.events", "job.priced")


async def test_an_installer_that_keeps_the_passwords_leaves_running_services_able_to_reconnect(
    infra, amqp_url
):
    """The compose stack's init runs again at every `up` while the services run: given the
    passwords it kept, installing again changes none, so a service reconnecting after a
    broker restart still signs in."""
    kept: dict[str, str] = {}

    def keeper(user: str) -> str:
        return kept.setdefault(user, f"kept-{uuid.uuid4().hex}")

    first = await install(
        amqp_url, _admin_management_url(infra), disable_guest=False, passwords=keeper
    )
    users = set(kept)
    again = await install(
        amqp_url, _admin_management_url(infra), disable_guest=False, passwords=keeper
    )
    assert set(kept) == users and len(users) >= len(first.urls) + 2  # the manager, the monitor
    assert again == first
    await _publish(first.urls["pricing"], "platen.events", "job.priced")
    async with BrokerAdmin(first.identity_manager_url, vhost_of(amqp_url)) as manager:
        assert not await manager.user_exists("nobody-" + uuid.uuid4().hex)


async def test_an_upgrade_removes_the_bindings_a_service_gave_up_and_keeps_the_rest(
    infra, amqp_url
):
    """A site installed by an older version has notification's events queue bound to
    `job.authorized`, which notification no longer takes: left there, every job's
    authorisation would be dead-lettered by a service with no handler for it. Installing
    again removes that binding, and only that one."""
    admin_url = _admin_management_url(infra)
    await install(amqp_url, admin_url, disable_guest=False)
    conn = await aio_pika.connect(amqp_url)
    async with conn:
        ch = await conn.channel()
        events = await ch.get_exchange("platen.events")
        queue = await ch.get_queue("notification.events")
        await queue.bind(events, routing_key="job.authorized")  # as the older version did
        async with BrokerAdmin(admin_url, vhost_of(amqp_url)) as admin:
            before = await admin.bindings("platen.events", "notification.events")
            replay = await admin.bindings("platen.replay", "notification.events")
            answers = await admin.bindings("platen.replies", "notification.answers")
        assert "job.authorized" in before

        await install(amqp_url, admin_url, disable_guest=False)

        async with BrokerAdmin(admin_url, vhost_of(amqp_url)) as admin:
            after = await admin.bindings("platen.events", "notification.events")
            assert set(after) == set(before) - {"job.authorized"}
            assert "job.cancelled" in after
            assert await admin.bindings("platen.replay", "notification.events") == replay
            assert await admin.bindings("platen.replies", "notification.answers") == answers
        publisher = await conn.channel(publisher_confirms=True)
        await (await publisher.get_exchange("platen.events")).publish(
            aio_pika.Message(b"{}"), routing_key="job.authorized"
        )
        await publisher.close()
        assert (
            await ch.declare_queue("notification.events", passive=True)
        ).declaration_result.message_count == 0
        assert (
            await ch.declare_queue("job-capture.events", passive=True)
        ).declaration_result.message_count == 1


def test_platenctl_broker_setup_writes_owner_only_files(infra, amqp_url, tmp_path):
    out = subprocess.run(
        [
            sys.executable, "-m", "platen.ctl", "broker", "setup",
            "--amqp-url", amqp_url,
            "--management-url", _admin_management_url(infra),
            "--out", str(tmp_path / "etc"),
        ],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    files = sorted(p.name for p in (tmp_path / "etc").iterdir())
    assert "pricing.env" in files and "notification.env" in files and "admin.env" in files
    for f in (tmp_path / "etc").iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o600
        assert f.read_text().startswith("PLATEN_AMQP_URL=")
    assert "PLATEN_BROKER_MANAGEMENT_URL=" in (tmp_path / "etc" / "notification.env").read_text()
    assert "PLATEN_BROKER_MONITOR_URL=" in (tmp_path / "etc" / "job-capture.env").read_text()
    assert "SECRET" not in out.stdout and "@" not in out.stdout  # no credentials echoed


def test_platenctl_broker_setup_with_a_wrong_password_says_so(infra, amqp_url, tmp_path):
    wrong = _admin_management_url(infra).replace(urlsplit(infra.amqp_url).password, "nope", 1)
    out = subprocess.run(
        [
            sys.executable, "-m", "platen.ctl", "broker", "setup",
            "--amqp-url", amqp_url, "--management-url", wrong, "--out", str(tmp_path),
        ],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 1
    assert "broker setup failed" in out.stderr and "401" in out.stderr


async def test_the_presence_monitor_sees_who_is_connected_from_where_and_changes_nothing(
    infra, amqp_url
):
    import asyncio

    import httpx

    from platen.broker_setup.broker_admin import BrokerAdmin, split_credentials, vhost_of

    installed = await install(amqp_url, _admin_management_url(infra), disable_guest=False)
    monitor = installed.presence_monitor_url
    conn = await aio_pika.connect(installed.urls["admin"])
    async with conn, BrokerAdmin(monitor, vhost_of(amqp_url)) as admin:
        admin_user = urlsplit(installed.urls["admin"]).username
        for _ in range(100):  # the management API's connection list lags by seconds
            peers = await admin.peers()
            if any(user == admin_user for user, _ in peers):
                break
            await asyncio.sleep(0.2)
        assert (admin_user, "127.0.0.1") in peers
        base, auth = split_credentials(monitor)
        async with httpx.AsyncClient(base_url=base, auth=auth) as http:
            r = await http.put("/api/users/mallory", json={"password": "x", "tags": ""})
            assert r.status_code in (401, 403)
    monitor_amqp = installed.urls["admin"].replace(
        urlsplit(installed.urls["admin"]).netloc.split("@")[0],
        f"{auth[0]}:{auth[1]}",
        1,
    )
    with pytest.raises(ChannelAccessRefused):
        await _publish(monitor_amqp, "platen.commands", "capture.printer.identity.set")


async def test_desktop_and_dead_letter_queues_are_bounded(infra, amqp_url):
    await install(amqp_url, _admin_management_url(infra), disable_guest=False)
    login = f"bounded{uuid.uuid4().hex[:6]}"
    conn = await aio_pika.connect(amqp_url)
    async with conn:
        ch = await conn.channel(publisher_confirms=True)
        await declare_desktop_queue(ch, login)
        desktop = await ch.get_exchange(DESKTOP, ensure=False)
        # A desktop that never reads: its queue keeps only the newest messages.
        for i in range(1010):
            await desktop.publish(
                aio_pika.Message(str(i).encode()), routing_key=desktop_key(login, "notice")
            )
        queue = await ch.declare_queue(desktop_queue(login), passive=True)
        assert queue.declaration_result.message_count == 1000
        newest = await queue.get()
        assert newest.body == b"10"  # 0 to 9 were dropped, oldest first
        await queue.purge()
    async with BrokerAdmin(_admin_management_url(infra), vhost_of(amqp_url)) as admin:
        for dlq in ("pricing.events.dlq", "platen.unrouted"):
            r = await admin.http.get(f"/api/queues/{quote(vhost_of(amqp_url), safe='')}/{dlq}")
            applied = await _eventually_policy(admin, r.request.url.path)
            assert applied["max-length"] == 10000 and applied["message-ttl"] == 30 * 86400000


async def _eventually_policy(admin, path, timeout=30.0):
    # The management API reports a queue's effective policy with its statistics, which
    # it refreshes every few seconds.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        r = await admin.http.get(path)
        applied = r.json().get("effective_policy_definition") or {}
        if applied or loop.time() > deadline:
            return applied
        await asyncio.sleep(0.5)


async def test_a_desktop_user_cannot_open_connections_without_end(infra, amqp_url):
    login = f"many{uuid.uuid4().hex[:6]}"
    async with BrokerAdmin(_admin_management_url(infra), vhost_of(amqp_url)) as admin:
        await admin.set_password(login, "pw-many-1")
        await admin.grant(login, permissions.desktop_user(login))
        assert await admin.limits(login) == {
            "max-connections": permissions.DESKTOP_MAX_CONNECTIONS,
            "max-channels": permissions.DESKTOP_MAX_CHANNELS,
        }
    url = with_credentials(amqp_url, login, "pw-many-1")
    opened = []
    try:
        for _ in range(permissions.DESKTOP_MAX_CONNECTIONS):
            opened.append(await aio_pika.connect(url))
        with pytest.raises((AMQPConnectionError, ConnectionError, InvalidFrameError)):
            opened.append(await aio_pika.connect(url))
    finally:
        for conn in opened:
            await conn.close()
        async with BrokerAdmin(_admin_management_url(infra), vhost_of(amqp_url)) as admin:
            await admin.delete_user(login)
