"""Jobs printed through real CUPS queues whose device is `platen:/ipp://...`.

The module's tests share one running system (each has its own print server and a user of
its own, and looks only at its own jobs), as docs/development.md describes; the two marked
`own_system` say why.
"""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from decimal import Decimal as D

import pytest

from platen import rpc
from platen.events.accounts import AnswerJob
from platen.events.registry import decode
from platen.testing.documents import make_pdf
from tests.e2e.helpers import (
    EventRecorder,
    eventually,
    ledger_problems,
    query,
    wait_hold,
    wait_settled,
)

COMPLETED, CANCELED, ABORTED = "completed", "canceled", "aborted"

pytestmark = pytest.mark.shared_system


async def job_state(rig, queue: str, job: int, states: set[str], timeout: float = 60) -> dict:
    async def check():
        info = await asyncio.to_thread(rig.cups.job, queue, job)
        return info if info.get("job-state") in states else None

    info = await eventually(check, timeout=timeout, interval=0.5)
    assert info, f"CUPS job {job} never reached {states}: {rig.cups.job(queue, job)}"
    return info


def document(system, pages: int = 3):
    path = system.tmp / f"report-{pages}.pdf"
    path.write_bytes(make_pdf(pages))
    return path


async def answer(system, job_id: str, user: str, action: str = "print"):
    # As the notification service forwards a desktop's answer: the ledger takes answers
    # from no one else.
    async with rpc.connect(system.ids.services["notification"]) as client:
        return await client.request(
            "ledger.job.answer", AnswerJob(job_id=uuid.UUID(job_id), user=user, action=action)
        )


async def test_a_job_reaches_the_printer_only_after_authorisation(system, cups):
    system.ctl("printer", "add", "lab-color", "--price-per-page", "0.10")
    system.ctl("user", "add", "amy", "--balance", "5.00")
    system.ctl("user", "set", "amy", "--selection", "confirm")
    printer = cups.printers["lab-color"]
    async with EventRecorder(system.amqp_url) as events:
        job = cups.cups.lp("lab-color", document(system), "amy", "sides=two-sided-long-edge")
        [ask] = await events.wait_for("job.input_required", 1, timeout=60, user="amy")
        await asyncio.sleep(1)
        assert printer.received() == []  # held while Platen waits for amy
        [raw] = events.of_type("job.captured", ask.correlation_id)
        assert raw.headers["platen-schema-version"] == 4
        captured = decode(raw.type, 4, raw.body)
        # CUPS's pdftopdf may pad a duplex job to an even page count before the backend
        # sees it; what is charged is what job-capture found in the document it received.
        assert captured.duplex is True and captured.pages in (3, 4)
        assert captured.sheets == (captured.pages + 1) // 2
        await answer(system, ask.correlation_id, "amy")
        await job_state(cups, "lab-color", job, {COMPLETED})
        await events.wait_for("job.charged", 1, job_id=ask.correlation_id)
    assert len(printer.received()) == 1
    charged = captured.pages * D("0.10")
    assert D(system.user_json("amy")["balance"]) == D("5.00") - charged
    assert await ledger_problems(system.database_url) == []


async def test_a_denied_job_never_arrives_and_cups_shows_why(system, cups):
    system.ctl("printer", "add", "lab-color", "--price-per-page", "0.10")
    system.ctl("user", "add", "bob", "--balance", "0.10")
    job = cups.cups.lp("lab-color", document(system), "bob")
    info = await job_state(cups, "lab-color", job, {CANCELED, ABORTED})
    assert "insufficient credit" in info["job-printer-state-message"]
    assert cups.printers["lab-color"].received() == []
    assert D(system.user_json("bob")["balance"]) == D("0.10")


# Own system: it asserts that every job recorded is first.last's (no other login made).
@pytest.mark.own_system
async def test_a_domain_user_with_a_dotted_login_prints_as_their_platen_login(system, cups):
    # The print server sees Active Directory names; its backend maps the site's domains
    # off (`--login-domains CORP, corp.example.org`), and logins match without regard to
    # case. A domain the site did not list is no login: cancelled, saying so.
    system.ctl("printer", "add", "lab-color", "--price-per-page", "0.10")
    system.ctl("user", "add", "First.Last", "--balance", "5.00")
    mapped = cups.cups.lp("lab-color", document(system, 1), "CORP\\First.Last")
    await job_state(cups, "lab-color", mapped, {COMPLETED})
    realm = cups.cups.lp("lab-color", document(system, 2), "first.last@CORP.EXAMPLE.ORG")
    await job_state(cups, "lab-color", realm, {COMPLETED})
    other = cups.cups.lp("lab-color", document(system, 1), "EVIL\\first.last")
    info = await job_state(cups, "lab-color", other, {CANCELED, ABORTED})
    assert "not a login Platen knows" in info["job-printer-state-message"]
    assert len(cups.printers["lab-color"].received()) == 2

    # The ledger charges a job after job-capture has it printed, which may be after CUPS
    # shows it completed: each charge waited for.
    async def printed() -> list:
        sql = "SELECT job_id FROM job_capture.jobs WHERE state = 'printed'"
        return [r["job_id"] for r in await query(system.database_url, sql)]

    assert await eventually(lambda: _count(printed(), 2), timeout=30), await printed()
    for job_id in await printed():
        await wait_settled(system, job_id)
    user = system.user_json("first.last")
    assert (user["login"], D(user["balance"])) == ("first.last", D("4.70"))
    rows = await query(system.database_url, "SELECT DISTINCT user_login FROM job_capture.jobs")
    assert [r["user_login"] for r in rows] == ["first.last"]


async def _count(rows, n: int) -> bool:
    return len(await rows) == n


async def test_a_job_the_printer_fails_is_reported_and_not_charged(system, cups):
    system.ctl("printer", "add", "broken", "--price-per-page", "0.10")
    system.ctl("user", "add", "abe", "--balance", "5.00")
    async with EventRecorder(system.amqp_url) as events:
        job = cups.cups.lp("broken", document(system), "abe")
        [failed] = await events.wait_for("job.failed", 1, timeout=60, user="abe")
        assert "status 1" in failed.body.decode()
        # What CUPS does next is its error policy's business (by default it stops the
        # queue and holds the job); the printer's error is the job's state message.
        info = await job_state(cups, "broken", job, {"pending-held", CANCELED, ABORTED})
        assert "on fire" in info["job-printer-state-message"]
        # The ledger releases the hold when it takes the `job.failed` seen above.
        await wait_hold(system, failed.correlation_id, "voided")
        await asyncio.sleep(1)
        assert events.of_type("job.charged", failed.correlation_id) == []
    abe = system.user_json("abe")
    assert (D(abe["balance"]), D(abe["held"])) == (D("5.00"), D("0.00"))
    rows = await query(
        system.database_url, "SELECT state FROM job_capture.jobs WHERE user_login = 'abe'"
    )
    assert [r["state"] for r in rows] == ["failed"]


async def test_an_unanswered_job_expires_and_is_cancelled_with_the_reason(system, cups):
    system.ctl("printer", "add", "lab-quick", "--price-per-page", "0.10")
    system.ctl("user", "add", "ava", "--balance", "5.00")
    system.ctl("user", "set", "ava", "--selection", "confirm")
    job = cups.cups.lp("lab-quick", document(system), "ava")
    info = await job_state(cups, "lab-quick", job, {CANCELED, ABORTED}, timeout=60)
    assert "before its deadline" in info["job-printer-state-message"]
    assert cups.printers["lab-color"].received() == []
    ava = system.user_json("ava")
    assert (D(ava["balance"]), D(ava["held"])) == (D("5.00"), D("0.00"))


# Own system: it kills and restarts job-capture.
@pytest.mark.own_system
async def test_job_capture_killed_while_a_cups_job_waits(system, cups):
    system.ctl("printer", "add", "lab-color", "--price-per-page", "0.10")
    system.ctl("user", "add", "alice", "--balance", "5.00")
    system.ctl("user", "set", "alice", "--selection", "confirm")
    async with EventRecorder(system.amqp_url) as events:
        job = cups.cups.lp("lab-color", document(system, 2), "alice")
        [ask] = await events.wait_for("job.input_required", 1, timeout=60)
        system.services.kill("job-capture")
        await asyncio.sleep(2)  # the backend keeps asking, and gets no answer meanwhile
        # alice answers while job-capture is still down: the ledger authorises the job,
        # and job-capture hears of it only when it is back.
        await answer(system, ask.correlation_id, "alice")
        await events.wait_for("job.authorized", 1, timeout=30)
        await asyncio.sleep(2)
        assert cups.printers["lab-color"].received() == []  # nothing prints meanwhile
        system.services.start("job-capture")
        await job_state(cups, "lab-color", job, {COMPLETED}, timeout=90)
        await events.wait_for("job.charged", 1)
        await asyncio.sleep(1)
        assert len(events.of_type("job.charged")) == 1
    assert len(cups.printers["lab-color"].received()) == 1
    assert D(system.user_json("alice")["balance"]) == D("4.80")


async def test_a_document_over_the_size_limit_is_cancelled_with_the_reason(system, cups):
    system.ctl("printer", "add", "lab-color", "--price-per-page", "0.10")
    system.ctl("user", "add", "ari", "--balance", "5.00")
    path = document(system, 3)
    size = path.stat().st_size
    config = cups.cups.backend_config
    config.write_text(
        config.read_text().replace("[platen]\n", f"[platen]\nmax_document_bytes = {size - 1}\n")
    )
    # Printed raw, the document reaches the backend byte for byte: one byte over.
    job = cups.cups.lp("lab-color", path, "ari", "raw")
    info = await job_state(cups, "lab-color", job, {CANCELED, ABORTED}, timeout=60)
    assert "the document is too large" in info["job-printer-state-message"]
    assert f"the limit is {size - 1}" in info["job-printer-state-message"]
    await asyncio.sleep(1)
    assert cups.printers["lab-color"].received() == []
    rows = await query(
        system.database_url, "SELECT job_id FROM job_capture.jobs WHERE user_login = 'ari'"
    )
    assert rows == []  # never sent to Platen, so nothing to charge
    assert D(system.user_json("ari")["balance"]) == D("5.00")


def test_cups_administration_is_for_root_by_its_private_socket_only(cups):
    """Every user of the host reaches cupsd's TCP port (to print): nobody administers it
    there. Root does, by a socket in a folder only it can enter (peer credentials)."""
    add = ["lpadmin", "-p", "rogue", "-E", "-v", "ipp://127.0.0.1:9/rogue"]
    over_tcp = subprocess.run(
        add,
        env=cups.cups.env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        start_new_session=True,  # no terminal to ask a password on
    )
    assert over_tcp.returncode != 0
    disable = subprocess.run(
        ["cupsdisable", "lab-color"],
        env=cups.cups.env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        start_new_session=True,
    )
    assert disable.returncode != 0
    queues = cups.cups.run("lpstat", "-p").stdout
    assert "rogue" not in queues and "lab-color is idle" in queues
    assert cups.cups.admin_socket.parent.stat().st_mode & 0o077 == 0
    cups.cups.run(*add)  # the same, as root by the socket
    assert "rogue" in cups.cups.run("lpstat", "-p").stdout
