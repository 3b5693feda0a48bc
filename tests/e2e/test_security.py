"""Desktop identities on the real system: issued by platenctl, kept by the notification
service, enforced by the broker, and taken away when a user is disabled."""

from __future__ import annotations

import asyncio
import json
import re
import stat
import time
import tomllib
import uuid
from datetime import UTC, datetime
from decimal import Decimal as D
from pathlib import Path
from urllib.parse import urlsplit

import aio_pika
import asyncpg
import pytest
from aiormq.exceptions import (
    ChannelAccessRefused,
    ChannelPreconditionFailed,
    InvalidFrameError,
    ProbableAuthenticationError,
)

from platen import rpc
from platen.broker_setup.broker_admin import BrokerAdmin
from platen.broker_setup.installation import with_credentials
from platen.events.accounts import TopUp
from platen.events.desktop import BalanceNotice
from platen.events.discovery import signed_in_as
from platen.events.jobs import GetJobStatus, JobPrinted, JobStatus
from platen.events.registry import decode
from platen.events.routing import (
    COMMANDS,
    DEAD_LETTER,
    DEAD_LETTERS,
    DESKTOP_REPLIES,
    EVENTS,
    REPLIES,
    reply_prefix,
)
from tests.e2e.clientproc import ClientProcess
from tests.e2e.helpers import command, eventually

# One running system for the module: each test has users and print servers of its own
# (alice/bob, carol, dave, ivy, lab/lab.2) and reads only what is theirs; the three that
# stop a service, count a whole queue or read the services' /proc environment own one.
pytestmark = pytest.mark.shared_system


def issue(system, login: str) -> str:
    """`platenctl user credential`: the URL from the config file it writes."""
    # The notification service knows the user once it has taken the ledger's `user.added`,
    # which may still be on its way when `user add` returns ("no user named ...").
    deadline = time.monotonic() + 60
    while True:
        out = system.ctl("user", "credential", login, "--output", f"{login}.toml", check=False)
        if out.returncode == 0 or time.monotonic() > deadline:
            break
        assert f"no user named {login!r}" in out.stderr, out.stderr
        time.sleep(0.2)
    assert out.returncode == 0, out.stderr
    path = system.tmp / f"{login}.toml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    config = tomllib.loads(path.read_text())
    assert config["user"] == login
    password = config["password"]
    assert password not in out.stdout + out.stderr
    assert password not in "".join(system.services.log(n) for n in system.services.procs)
    return with_credentials(config["url"], login, password)


async def take_balance(url: str, login: str) -> BalanceNotice:
    conn = await aio_pika.connect(url)
    async with conn:
        ch = await conn.channel()
        q = await ch.get_queue(f"desktop.{login}", ensure=False)
        for _ in range(100):
            raw = await q.get(fail=False)
            if raw is not None:
                await raw.ack()
                msg = decode(raw.type, raw.headers["platen-schema-version"], raw.body)
                if isinstance(msg, BalanceNotice):
                    return msg
            else:
                await asyncio.sleep(0.1)
    raise AssertionError("no balance notice")


async def refused(url: str, action) -> Exception:
    conn = await aio_pika.connect(url)
    try:
        ch = await conn.channel(publisher_confirms=True)
        with pytest.raises((ChannelAccessRefused, ChannelPreconditionFailed)) as info:
            await action(ch)
        return info.value
    finally:
        await conn.close()


async def test_a_user_signs_in_with_an_issued_credential_and_only_as_themselves(system):
    system.ctl("user", "add", "alice", "--balance", "5.00")
    system.ctl("user", "add", "bob", "--balance", "1.00")
    alice = issue(system, "alice")
    assert (await take_balance(alice, "alice")).balance == 5

    async def read_bob(ch):
        q = await ch.get_queue("desktop.bob", ensure=False)
        await q.get(fail=False)

    async def publish_event(ch):
        ex = await ch.get_exchange("platen.events", ensure=False)
        await ex.publish(aio_pika.Message(b"{}", type="job.printed"), routing_key="job.printed")

    async def publish_command(ch):
        ex = await ch.get_exchange("platen.commands", ensure=False)
        await ex.publish(aio_pika.Message(b"{}", type="ledger.topup"), routing_key="ledger.topup")

    async def bind_to_events(ch):
        q = await ch.get_queue("desktop.alice", ensure=False)
        await q.bind("platen.events", "#")

    async def bind_to_desktops(ch):
        q = await ch.get_queue("desktop.alice", ensure=False)
        await q.bind("platen.desktop", "user.bob.#")

    async def reply_as_bob(ch):
        ex = await ch.get_exchange("platen.desktop.replies", ensure=False)
        await ex.publish(aio_pika.Message(b"{}"), routing_key="user.bob.answer")

    async def spoof_user_id(ch):
        ex = await ch.get_exchange("platen.desktop.replies", ensure=False)
        await ex.publish(aio_pika.Message(b"{}", user_id="bob"), routing_key="user.alice.answer")

    for action in (
        read_bob,
        publish_event,
        publish_command,
        bind_to_events,
        bind_to_desktops,
        reply_as_bob,
        spoof_user_id,
    ):
        error = await refused(alice, action)
        assert "refused" in str(error) or "user_id" in str(error), (action.__name__, error)
    # Each attempt is in the broker's log, with the user and what was refused. The broker
    # writes its log a moment later, the more so on a busy machine: wait for all of it.
    spoofed = "user_id property set to 'bob' but authenticated user was 'alice'"
    for _ in range(150):
        if len(system.broker_refusals("alice")) >= 6 and spoofed in (
            system.identities.infra.broker_log()
        ):
            break
        await asyncio.sleep(0.1)
    logged = "\n".join(system.broker_refusals("alice"))
    for what in ("queue 'desktop.bob'", "exchange 'platen.events'", "exchange 'platen.commands'"):
        assert what in logged, what
    assert "topic 'user.bob.answer'" in logged
    log = system.identities.infra.broker_log()
    assert spoofed in log
    # A new credential replaces the old one.
    renewed = issue(system, "alice")
    with pytest.raises(ProbableAuthenticationError):
        await aio_pika.connect(alice)
    conn = await aio_pika.connect(renewed)
    async with conn:
        queue = await (await conn.channel()).get_queue("desktop.alice", ensure=False)
        await queue.get(fail=False)  # reads its own queue with the new credential
    assert "ledger OK" in system.ctl("ledger", "verify").stdout


async def test_a_disabled_user_is_signed_out_within_seconds_and_cannot_sign_in(system):
    system.ctl("user", "add", "carol", "--balance", "2.00")
    url = issue(system, "carol")
    conn = await aio_pika.connect(url)
    lost = asyncio.Event()
    conn.close_callbacks.add(lambda *_: lost.set())
    loop = asyncio.get_running_loop()
    started = loop.time()
    system.ctl("user", "set", "carol", "--disabled")
    await asyncio.wait_for(lost.wait(), timeout=15)
    print(f"disconnected {loop.time() - started:.1f} s after platenctl returned")
    # RabbitMQ closes the connection at Connection.Open: no access to the vhost.
    with pytest.raises((ProbableAuthenticationError, InvalidFrameError)):
        await aio_pika.connect(url)
    denied = system.ctl("user", "credential", "carol", check=False)
    assert denied.returncode == 1 and "disabled" in denied.stderr
    system.ctl("user", "set", "carol", "--enabled")
    # The notification service grants the permissions back when it takes the ledger's
    # `user.enabled`: a deadline a loaded machine meets, not a count of tries.
    deadline = loop.time() + 60
    while True:
        try:
            back = await aio_pika.connect(url)
            await back.close()
            break
        except (ProbableAuthenticationError, InvalidFrameError) as exc:
            if loop.time() > deadline:
                raise AssertionError("carol could not sign in again after being enabled") from exc
            await asyncio.sleep(0.2)


async def test_the_real_client_of_a_disabled_user_is_signed_out_and_shows_no_secret(
    system, desktops, tmp_path
):
    system.ctl("user", "add", "dave", "--balance", "1.00")
    config = desktops("dave")
    password = tomllib.loads(config.read_text())["password"]
    client = ClientProcess(None, None, tmp_path / "state", "--config", str(config), "--debug")
    try:
        await client.wait_for("client.status", state="connected")
        system.ctl("user", "set", "dave", "--disabled")
        # Signed out, it keeps trying (as after a network loss) and keeps being refused.
        await client.wait_for("client.status", state="disconnected", timeout=15)
        await asyncio.sleep(3)
        assert client.of_type("client.status")[-1]["state"] != "connected"
        everything = json.dumps(client.lines) + "".join(client.stderr)
        assert password not in everything
    finally:
        client.stop()


SCHEMAS = {
    "job-capture": "job_capture",
    "pricing": "pricing",
    "account-ledger": "ledger",
    "notification": "notification",
}


async def test_each_service_is_its_own_database_role_and_none_can_turn_off_the_ledger(system):
    urls = system.services.database_urls
    assert sorted(urls) == sorted(SCHEMAS)
    logs = "".join(system.services.log(n) for n in system.services.procs)
    roles = set()
    for name, url in urls.items():
        assert urlsplit(url).password not in logs
        conn = await asyncpg.connect(url)
        try:
            me = await conn.fetchrow(
                "SELECT rolname, rolsuper, rolcreaterole FROM pg_roles WHERE rolname = current_user"
            )
            assert not me["rolsuper"] and not me["rolcreaterole"]
            roles.add(me["rolname"])
            for statement in (
                "ALTER TABLE ledger.entries DISABLE TRIGGER ALL",
                "ALTER TABLE ledger.accounts DISABLE TRIGGER accounts_balance_by_postings",
                "DROP TRIGGER holds_state_machine ON ledger.holds",
                "SET session_replication_role = replica",
            ):
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await conn.execute(statement)
            await conn.fetchval(f"SELECT count(*) FROM {SCHEMAS[name]}.schema_migrations")
            for other in set(SCHEMAS.values()) - {SCHEMAS[name]}:
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await conn.fetchval(f"SELECT count(*) FROM {other}.schema_migrations")
        finally:
            await conn.close()
    # The running services are signed in as those roles, and as nothing else.
    admin = await asyncpg.connect(system.database_url)
    try:
        signed_in = await admin.fetch(
            "SELECT DISTINCT usename FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name LIKE 'platen-%'"
        )
    finally:
        await admin.close()
    assert {r["usename"] for r in signed_in} == roles


async def test_a_service_cannot_have_the_ledger_move_money_by_any_route(system):
    """Pricing's identity may publish `ledger.topup` neither on `platen.commands` nor
    straight into the ledger's queue through the default exchange: the broker refuses
    both. What reaches the ledger's queue anyway (here from the broker's administrator,
    who alone may still use the default exchange) the ledger refuses by its
    broker-checked user_id, dead-letters with the reason, and moves no money. The same
    command from platenctl's identity goes through."""
    system.ctl("user", "add", "ivy", "--balance", "1.00")
    pricing = system.ids.services["pricing"]

    def forged(url: str) -> aio_pika.Message:
        topup = TopUp(account="ivy", amount=D("100.00"), key=f"forged-{uuid.uuid4()}")
        return command(topup, user_id=signed_in_as(url))

    async def on_commands(ch):
        ex = await ch.get_exchange("platen.commands", ensure=False)
        await ex.publish(forged(pricing), routing_key="ledger.topup")

    async def by_queue_name(ch):
        await ch.default_exchange.publish(forged(pricing), routing_key="account-ledger.commands")

    for route in (on_commands, by_queue_name):
        assert "ACCESS_REFUSED" in str(await refused(pricing, route))
    conn = await aio_pika.connect(system.amqp_url)
    async with conn:
        ch = await conn.channel(publisher_confirms=True)
        stray = forged(system.amqp_url)
        await ch.default_exchange.publish(stray, routing_key="account-ledger.commands")

    async def refused_by_the_ledger() -> bool:
        out = system.ctl("dlq", "list", "--json", check=False)
        return stray.message_id in out.stdout and "accepted only from admin" in out.stdout

    assert await eventually(refused_by_the_ledger, timeout=30)
    assert D(system.user_json("ivy")["balance"]) == D("1.00")
    system.ctl("topup", "ivy", "2.00")
    assert D(system.user_json("ivy")["balance"]) == D("3.00")


@pytest.mark.own_system  # kills account-ledger and reads every identity's rights
async def test_no_platen_identity_may_publish_to_the_default_exchange(system):
    """Every user with rights on the vhost but the broker administrator who installed
    it (the services, platenctl, a print server, a desktop) is denied `amq.default`, by
    the broker's own permission list; and pricing's identity putting a `job.printed` into
    the ledger's queue by name is refused, the queue left empty."""
    system.ctl("user", "add", "dora", "--balance", "1.00")
    issue(system, "dora")
    print_server = signed_in_as(system.print_server("lab"))
    async with BrokerAdmin(system.ids.management_url, system.vhost) as admin:
        rights = await admin.vhost_permissions()
    rights.pop(signed_in_as(system.amqp_url))
    platen = {signed_in_as(u) for u in (*system.ids.services.values(), system.admin_url)}
    assert platen | {print_server, "dora"} <= set(rights)
    writers = {user for user, r in rights.items() if re.search(r["write"], "amq.default")}
    assert writers == set()

    system.services.kill("account-ledger")  # so that what reaches its queue stays there
    pricing = system.ids.services["pricing"]
    job = {"user": "dora", "printer": "lab", "document_name": "forged.pdf", "pages": 1}
    printed = command(
        JobPrinted(job_id=uuid.uuid4(), copies=1, printed_at=datetime.now(UTC), **job),
        user_id=signed_in_as(pricing),
    )

    async def into_the_ledger(ch):
        await ch.default_exchange.publish(printed, routing_key="account-ledger.events")

    try:
        assert "ACCESS_REFUSED" in str(await refused(pricing, into_the_ledger))
        conn = await aio_pika.connect(system.amqp_url)
        async with conn:
            ch = await conn.channel()
            queue = await ch.declare_queue("account-ledger.events", passive=True)
            assert queue.declaration_result.message_count == 0
    finally:
        system.services.start("account-ledger")
        system.wait_ready()


@pytest.mark.own_system  # counts every message in pricing's dead-letter queue
async def test_a_service_cannot_read_fill_or_drop_what_is_not_its_own(system):
    """Pricing's identity, standing for any compromised service, is refused by the broker
    when it: binds a queue of its own to another service's commands (a desktop's answer
    carries a PIN) or to what desktops answer; puts a message into another service's
    dead-letter queue (through the broker's direct `platen.dlx`, or under another queue's
    name on `platen.dead-letters`); deletes an exchange. Its own dead letters still go."""
    pricing = system.ids.services["pricing"]

    def bind(exchange: str, key: str):
        async def action(ch):
            queue = await ch.declare_queue(exclusive=True)
            await queue.bind(exchange, routing_key=key)

        return action

    def publish(exchange: str, key: str):
        async def action(ch):
            target = await ch.get_exchange(exchange, ensure=False)
            await target.publish(aio_pika.Message(b"{}"), routing_key=key, mandatory=False)

        return action

    async def drop_events(ch):
        await ch.exchange_delete(EVENTS)

    for action in [
        bind(COMMANDS, "ledger.#"),
        bind(COMMANDS, "#"),
        bind(DESKTOP_REPLIES, "user.*.*"),
        publish(DEAD_LETTER, "account-ledger.events"),
        publish(DEAD_LETTERS, "account-ledger.events"),
        drop_events,
    ]:
        assert "ACCESS_REFUSED" in str(await refused(pricing, action))

    # What it may do: bind under its own prefix, dead-letter into its own queue.
    conn = await aio_pika.connect(pricing)
    async with conn:
        ch = await conn.channel(publisher_confirms=True)
        queue = await ch.declare_queue(exclusive=True)
        await queue.bind(COMMANDS, routing_key="pricing.nothing")
        own = await ch.get_exchange(DEAD_LETTERS, ensure=False)
        await own.publish(aio_pika.Message(b"{}"), routing_key="pricing.commands")
        dlq = await ch.declare_queue("pricing.commands.dlq", passive=True)
        assert dlq.declaration_result.message_count == 1
        await (await dlq.get(timeout=5)).ack()


async def test_a_reply_reaches_only_the_identity_that_asked(system):
    """Replies go through `platen.replies`, each identity binding only under its own
    `reply.<user>.`: a print server cannot bind under another's (not even print server
    `lab`'s under `lab.2`'s, whose name its own is a prefix of), nor a service under
    platenctl's, where the reply carrying a new desktop password goes. A print server
    with a dot in its name is answered."""
    lab, lab2 = system.print_server("lab"), system.print_server("lab.2")
    lab_user, lab2_user = signed_in_as(lab), signed_in_as(lab2)

    def bind_under(key: str):
        async def bind(ch):
            queue = await ch.declare_queue(exclusive=True)
            await queue.bind(REPLIES, routing_key=key)

        return bind

    for url, key in [
        (lab, reply_prefix(lab2_user) + "#"),
        (lab, f"reply.{lab_user}.2.#"),  # lab.2's prefix, were user names not encoded
        (lab, "#"),
        (system.ids.services["pricing"], reply_prefix(signed_in_as(system.admin_url)) + "#"),
    ]:
        assert "ACCESS_REFUSED" in str(await refused(url, bind_under(key)))
    # Its own key it may bind; and a request from lab.2 is answered.
    conn = await aio_pika.connect(lab)
    async with conn:
        await bind_under(reply_prefix(lab_user) + "mine")(await conn.channel())
    async with rpc.connect(lab2) as client:
        status = await client.request(
            "capture.job.status", GetJobStatus(job_id=uuid.uuid4()), timeout=30
        )
    assert isinstance(status, JobStatus) and status.state == "unknown"


# /proc/PID/environ is what the process was exec'd with: a forked child would show the
# fork server's.
@pytest.mark.own_system  # services exec'd, not forked
@pytest.mark.exec_services
def test_the_management_credential_reaches_the_notification_service_only(system):
    """The broker administrator's key (desktop identities) is in notification's
    environment and no other service's; job-capture holds its read-only monitoring key."""
    manager_password = urlsplit(system.ids.management_url).password
    assert manager_password
    environs = {}
    for name, proc in system.services.procs.items():
        raw = Path(f"/proc/{proc.pid}/environ").read_bytes()
        environs[name] = dict(
            item.split("=", 1) for item in raw.decode().split("\0") if "=" in item
        )
    holding = {n for n, env in environs.items() if "PLATEN_BROKER_MANAGEMENT_URL" in env}
    assert holding == {"notification"}
    leaked = {n for n, env in environs.items() if manager_password in "".join(env.values())}
    assert leaked == {"notification"}
    monitors = {n for n, env in environs.items() if "PLATEN_BROKER_MONITOR_URL" in env}
    assert monitors == {"job-capture"}
