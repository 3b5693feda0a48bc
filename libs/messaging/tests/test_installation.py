"""Installing Platen on a real broker: the topology, and identities that can do their job
and nothing else."""

import stat
import subprocess
import sys
from urllib.parse import urlsplit, urlunsplit

import aio_pika
import pytest
from aiormq.exceptions import ChannelAccessRefused

from platen.messaging import print_servers
from platen.messaging.broker_admin import BrokerAdmin, vhost_of
from platen.messaging.installation import LEGACY_PRINT_SERVER, install, with_credentials
from platen.messaging.topology import QUEUES


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
        for name in QUEUES:  # passive: fails if the installer did not declare it
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

    from platen.messaging.broker_admin import BrokerAdmin, split_credentials, vhost_of

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
