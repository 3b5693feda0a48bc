"""A host user printing through an `authenticated` CUPS queue for the first time: cupsd
signs them in (PAM), and the ledger, reading the host's users (NSS), makes them by their
group's new-user rule and charges the job."""

from __future__ import annotations

import secrets
import subprocess
from decimal import Decimal as D

import pytest

from tests.cups.test_cups_capture import COMPLETED, document, job_state
from tests.e2e.helpers import EventRecorder, eventually


@pytest.fixture
def host_user_in_group():
    """A host account (useradd, its primary group made for it here) with a password PAM
    checks; removed afterwards."""
    tag = secrets.token_hex(3)
    group, login = f"pg-{tag}", f"pn-{tag}"
    password = secrets.token_urlsafe(12)
    subprocess.run(["groupadd", group], check=True)
    try:
        subprocess.run(
            ["useradd", "-M", "-N", "-g", group, "-s", "/usr/sbin/nologin", login], check=True
        )
        subprocess.run(["chpasswd"], input=f"{login}:{password}\n", text=True, check=True)
        yield group, login, password
    finally:
        subprocess.run(["userdel", login], check=False, capture_output=True)
        subprocess.run(["groupdel", group], check=False, capture_output=True)


@pytest.mark.service_env(PLATEN_DIRECTORY="nss", PLATEN_NSS_MIN_UID="1000")
async def test_a_host_user_new_to_platen_prints_signed_in_and_is_made_by_the_rule(
    system, cups, host_user_in_group
):
    group, login, password = host_user_in_group
    system.ctl("printer", "identity", "secure", "authenticated")
    system.ctl("printer", "add", "secure", "--price-per-page", "0.10")
    system.ctl("rule", "set", group, "--balance", "2.00")
    assert system.ctl("user", "show", login, check=False).returncode == 1  # unknown so far
    path = document(system)
    async with EventRecorder(system.amqp_url) as events:
        job = cups.cups.print_signed_in(
            "secure", path, login=login, password=password, requesting=login
        )
        await job_state(cups, "secure", job, {COMPLETED}, timeout=90)
        await events.wait_for("job.charged", 1, timeout=30)
        assert events.of_type("job.denied") == []

    async def charged():
        return D(system.user_json(login)["balance"]) == D("1.70")

    assert await eventually(charged, timeout=30)
    assert system.user_json(login)["groups"] == [group]
    assert len(cups.printers["lab-color"].received()) == 1
