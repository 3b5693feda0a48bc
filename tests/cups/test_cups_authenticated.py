"""Identity at print on an `authenticated` queue: cupsd makes users sign in (Basic over
TLS, checked by PAM against accounts of this host, which the test creates), and the user
charged is the one who signed in, whatever name the job asks for."""

from __future__ import annotations

import secrets
from decimal import Decimal as D

import pytest

from platen.events.registry import decode
from platen.localstack.cups import host_account
from platen.localstack.servers import InfraError
from tests.cups.test_cups_capture import COMPLETED, document, job_state
from tests.e2e.helpers import EventRecorder, eventually, query


async def test_only_a_signed_in_user_prints_and_is_the_one_charged(system, cups):
    suffix = secrets.token_hex(3)
    alice, bob = f"pa-alice-{suffix}", f"pa-bob-{suffix}"  # host accounts, made and removed here
    password = secrets.token_urlsafe(12)
    out = system.ctl("printer", "identity", "secure", "authenticated")
    assert "secure: identity at print: authenticated" in out.stdout
    system.ctl("printer", "add", "secure", "--price-per-page", "0.10")
    system.ctl("user", "add", alice, "--balance", "5.00")
    system.ctl("user", "add", bob, "--balance", "5.00")
    out = system.ctl("printer", "show", "secure")
    assert "identity at print: authenticated" in out.stdout
    path = document(system)
    printer = cups.printers["lab-color"]
    with host_account(alice, password), host_account(bob, secrets.token_urlsafe(12)):
        # Without credentials, or with a wrong password, CUPS refuses the job itself.
        for login, secret in ((None, None), (alice, "wrong-" + password), (bob, password)):
            with pytest.raises(InfraError, match="not-authenticated"):
                cups.cups.print_signed_in(
                    "secure", path, login=login, password=secret, requesting=bob
                )
        assert await query(system.database_url, "SELECT 1 FROM job_capture.jobs") == []

        # alice signs in and asks for the job to be bob's: it is alice's.
        async with EventRecorder(system.amqp_url) as events:
            job = cups.cups.print_signed_in(
                "secure", path, login=alice, password=password, requesting=bob
            )
            await job_state(cups, "secure", job, {COMPLETED}, timeout=90)
            [raw] = await events.wait_for("job.captured", 1, timeout=30)
            captured = decode(raw.type, raw.headers["platen-schema-version"], raw.body)
            assert (captured.user, captured.identity) == (alice, "authenticated")
            await events.wait_for("job.charged", 1, timeout=30)
            assert events.of_type("job.input_required") == []
    assert len(printer.received()) == 1

    async def charged():
        return D(system.user_json(alice)["balance"]) == D("4.70")

    assert await eventually(charged, timeout=30)
    assert D(system.user_json(bob)["balance"]) == D("5.00")
