"""Signing in as yourself, end to end (issue 17 item 2), against a real OpenLDAP `slapd`
and the real services: a user signs in with their directory password on two desktops,
prints, both are asked, one answers and the other's popup closes; the administrator
revokes that desktop and it is signed out within seconds, its queue gone, while the other
still gets her messages; no password is stored in clear. One test on one running system
(CI time)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from decimal import Decimal as D
from pathlib import Path

import aio_pika
import pytest

from platen.events.discovery import with_login
from platen.events.routing import desktop_queue
from platen.localstack.servers import free_port
from platen.localstack.tls import make_test_ca
from platen.testing.documents import make_pdf
from platen.testing.ldap import Person, running_slapd
from tests.e2e.clientproc import ClientProcess
from tests.e2e.helpers import eventually, submit_jobs

PASSWORD = "Ann's directory pa55word"
DESKTOP = "pc-e2e"
OTHER_DESKTOP = "pc-two"
SIGN_IN = [sys.executable, "-m", "platen.client", "--sign-in", "--password-stdin"]


@pytest.fixture
def slapd(tmp_path):
    with running_slapd(tmp_path / "slapd") as server:
        yield server


@pytest.fixture
def endpoint(tmp_path):
    """The sign-in endpoint's address and its TLS files (a CA made for the test)."""
    return f"127.0.0.1:{free_port()}", make_test_ca(tmp_path / "signin-tls")


@pytest.fixture
def extra_service_env(slapd, endpoint, tmp_path):
    address, tls = endpoint
    env = slapd.ledger_env(tmp_path / "ldap-reader-password")
    # The notification service checks passwords against the directory; no sync is
    # needed by the ledger here (the user is added by hand).
    env.pop("PLATEN_DIRECTORY")
    return {
        **env,
        "PLATEN_SIGNIN_ADDRESS": address,
        "PLATEN_SIGNIN_CERT_FILE": str(tls.server_cert),
        "PLATEN_SIGNIN_KEY_FILE": str(tls.server_key),
    }


def sign_in(config: Path, password: str, desktop: str = DESKTOP) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*SIGN_IN, "--config", str(config), "--desktop", desktop.upper()],
        input=password + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ.copy(),
    )


async def queue_exists(amqp_url: str, name: str) -> bool:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        try:
            await (await connection.channel()).declare_queue(name, passive=True)
        except aio_pika.exceptions.ChannelNotFoundEntity:
            return False
        return True


async def test_sign_in_with_the_directory_password_print_answer_then_revoked_and_signed_out(
    slapd, endpoint, extra_service_env, system, tmp_path, monkeypatch
):
    address, tls = endpoint
    config_home = tmp_path / "xdg-config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config_home))
    slapd.add_person(Person("ann", "Ann Able", 10001, password=PASSWORD))
    system.ctl("printer", "add", "lab-1", "--price-per-page", "0.10")
    system.ctl("user", "add", "ann", "--balance", "5.00")
    system.ctl("user", "set", "ann", "--selection", "confirm")
    # What a site hands every desktop: where the broker and the sign-in are; no secret.
    config = tmp_path / "site.toml"
    config.write_text(
        f"url = {json.dumps(with_login(system.admin_url, '', ''))}\n"
        f'user = "ann"\n'
        f'sign_in_url = "https://{address}"\n'
        f"sign_in_cafile = {json.dumps(str(tls.ca_cert))}\n"
    )
    stored = config_home / "platen-client" / "signin-ann.toml"

    wrong = sign_in(config, "not " + PASSWORD)
    assert wrong.returncode == 1
    assert "the directory did not accept this login and password" in wrong.stderr
    assert not stored.exists()

    # The notification service knows ann once it has seen `user.added`, which may still
    # be on its way: until then the endpoint says she has no Platen account.
    deadline = time.monotonic() + 60
    while True:
        done = sign_in(config, PASSWORD)
        if done.returncode == 0 or time.monotonic() > deadline:
            break
        assert "has no Platen account" in done.stderr, done.stderr
        await asyncio.sleep(0.3)
    assert done.returncode == 0, done.stderr
    assert f"signed in as ann on desktop {DESKTOP}" in done.stdout
    # No keyring here: an owner-only file in an owner-only folder, with the issued
    # credential and not the directory password.
    assert stored.stat().st_mode & 0o777 == 0o600
    assert stored.parent.stat().st_mode & 0o777 == 0o700
    assert f'user = "ann~{DESKTOP}"' in stored.read_text()
    # Her second desktop (its own config folder, as on another machine).
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config-two"))
    assert sign_in(config, PASSWORD, OTHER_DESKTOP).returncode == 0
    listed = json.loads(system.ctl("user", "desktops", "ann", "--json").stdout)
    assert [(d["desktop"], d["username"]) for d in listed["desktops"]] == [
        (DESKTOP, f"ann~{DESKTOP}"),
        (OTHER_DESKTOP, f"ann~{OTHER_DESKTOP}"),
    ]

    # A later start uses the stored credential: the config file holds no password.
    other = ClientProcess(None, None, tmp_path / "state-two", "--config", str(config))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config_home))
    client = ClientProcess(None, None, tmp_path / "state", "--config", str(config))
    try:
        for desktop in (client, other):
            await desktop.wait_for("client.status", state="connected")
        [job] = await submit_jobs(system.amqp_url, "ann", "lab-1", make_pdf(2), 1)
        # Each desktop reads a queue of its own: both are asked (one shared queue handed
        # each message to one of them only).
        for desktop in (client, other):
            [prompt] = await desktop.wait_for("desktop.job_prompt", job_id=job)
            assert prompt["kind"] == "confirm" and prompt["cost"] == "0.20"
        # Her answer is taken: it comes from her own desktop's broker user.
        client.send(job_id=job, action="print")
        [result] = await client.wait_for("desktop.answer_result", job_id=job)
        assert result["outcome"] == "authorized"
        # The popup on the desktop that did not answer closes.
        await other.wait_for("desktop.prompt_closed", job_id=job, outcome="authorized")
        for desktop in (client, other):
            [printed] = await desktop.wait_for("desktop.job_printed", job_id=job)
            assert printed["balance"] == "4.80"
        assert D(system.user_json("ann")["balance"]) == D("4.80")

        revoked_at = time.monotonic()
        out = system.ctl("user", "revoke-desktop", "ann", DESKTOP)
        assert f"signed out ann's desktop {DESKTOP}" in out.stdout
        await client.wait_for("client.status", timeout=30, state="signed-out")
        seconds = time.monotonic() - revoked_at
        print(f"\nrevoked desktop signed out {seconds:.1f} s after platenctl was called")
        assert client.wait_exit(30) == 3  # it stops: no retrying a dead credential
        assert "signed out of Platen" in "".join(client.stderr)
        # Its queue is gone (nothing piles up for it); the other desktop's stays, and it
        # still gets her messages.
        gone = desktop_queue(f"ann~{DESKTOP}")
        assert await eventually(lambda: _not(queue_exists(system.amqp_url, gone)))
        assert await queue_exists(system.amqp_url, desktop_queue(f"ann~{OTHER_DESKTOP}"))
        system.ctl("topup", "ann", "1.00")
        await other.wait_for("desktop.balance", balance="5.80")
    finally:
        client.stop()
        other.stop()
    # The dead credential is dropped: the next start does not try it.
    assert not stored.exists()
    left = json.loads(system.ctl("user", "desktops", "ann", "--json").stdout)["desktops"]
    assert [d["desktop"] for d in left] == [OTHER_DESKTOP]

    # No password in clear anywhere Platen wrote: service logs, client files, config.
    for path in tmp_path.rglob("*"):
        if path.is_file() and "slapd" not in path.parts:
            text = path.read_bytes()
            assert PASSWORD.encode() not in text, path


async def _not(awaitable) -> bool:
    return not await awaitable
