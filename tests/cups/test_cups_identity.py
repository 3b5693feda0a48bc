"""Identity at print on a `desktop` queue, with two hosts on one machine.

Host A is 127.0.0.1, host B 127.0.0.2. Desktops on host B reach the broker through a
`HostRelay` whose connections leave from 127.0.0.2, so the broker itself sees them there.
cupsd names every loopback client "localhost", but takes `job-originating-host-name` from
a local client as given: the jobs here say which host they come from that way (which is
also why a print server must have no untrusted local users; see docs/security.md).

alice's desktop is the real platen-client with its windows (Tk, on the test's Xvfb),
signed in with her own credential; bob's is a real aio-pika connection with his. Nothing
here trusts what a client says about itself.
"""

from __future__ import annotations

import asyncio
import gc
import json
import uuid
from decimal import Decimal as D
from urllib.parse import urlsplit

import aio_pika

from platen.broker_setup.broker_admin import BrokerAdmin
from platen.client import app as client_app
from platen.client.config import Options
from platen.client.model import ClientModel
from platen.client.tkview import TkView
from platen.client.transport import Transport
from platen.events.desktop import PrintedNotice
from platen.events.registry import decode
from platen.testing.hosts import HostRelay
from tests.cups.test_cups_capture import ABORTED, CANCELED, COMPLETED, document, job_state
from tests.e2e.clientproc import desktop_url, desktops  # noqa: F401
from tests.e2e.helpers import EventRecorder, eventually, find

HOST_A, HOST_B = "127.0.0.1", "127.0.0.2"


async def connected(system, expected: set[tuple[str, str]]) -> None:
    """Wait until the broker's management API (which lags by seconds) shows these
    (user, peer address) connections on the test's vhost."""

    async def seen():
        async with BrokerAdmin(system.ids.monitor_url, system.vhost) as admin:
            return expected <= set(await admin.peers())

    assert await eventually(seen, timeout=60, interval=0.5), f"never saw {expected}"


def captured_of(events, job_id: str):
    [raw] = [r for r in events.of_type("job.captured") if r.correlation_id == job_id]
    return decode(raw.type, raw.headers["platen-schema-version"], raw.body)


async def platen_job(events, queue_jobs_before: int) -> str:
    [*_, raw] = await events.wait_for("job.captured", queue_jobs_before + 1, timeout=90)
    return raw.correlation_id


class GuiDesktop:
    """A user's desktop as the Tk client, in this process: its popups are looked at and
    its buttons pressed as the user would."""

    def __init__(self, url: str, login: str) -> None:
        self.view = TkView(Options(login=login, url=url, disable_notifications=True))
        self.model = ClientModel(login)
        self.app = client_app.ClientApp(self.model, self.view)
        self.app.transport = Transport(url, login, self.app.on_delivery, self.view.status)
        self.task = asyncio.create_task(client_app.run(self.app, self.app.transport))

    async def until(self, predicate, timeout: float = 60):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not (found := predicate()):
            assert loop.time() < deadline, "timed out"
            assert not self.task.done(), self.task
            await asyncio.sleep(0.1)
        return found

    async def popup(self, job_id: str):
        return await self.until(lambda: self.view.dialogs.get(uuid.UUID(job_id)))

    def asked(self, job_id: str) -> bool:
        job = uuid.UUID(job_id)
        return job in self.view.dialogs or job in self.model.prompts or job in self.model.answered

    async def stop(self) -> None:
        self.view.quit()
        await asyncio.wait_for(self.task, 10)


async def test_a_desktop_queue_charges_only_a_user_proven_present_or_who_confirms(
    system,
    cups,
    desktops,  # noqa: F811
    display,
):
    for queue in ("desk", "desk-quick"):
        system.ctl("printer", "add", queue, "--price-per-page", "0.10")
    system.ctl("user", "add", "alice", "--balance", "5.00")  # automatic charging
    system.ctl("user", "add", "bob", "--balance", "5.00")
    printer = cups.printers["lab-color"]
    bob_url = desktop_url(desktops("bob"))
    target = urlsplit(bob_url)
    alice_desktop = GuiDesktop(desktop_url(desktops("alice")), "alice")
    try:
        await alice_desktop.until(lambda: alice_desktop.view.state.cget("text") == "connected")
        await _on_two_hosts(system, cups, printer, bob_url, target, alice_desktop)
    finally:
        await alice_desktop.stop()
        # Tk's objects freed here, in the main thread (Tcl aborts when freed in another).
        alice_desktop = None
        gc.collect()


async def _on_two_hosts(system, cups, printer, bob_url, target, alice_desktop) -> None:
    async with (
        HostRelay(HOST_B, target.hostname, target.port) as host_b,
        await aio_pika.connect(host_b.url(bob_url)) as bob_on_b,
        EventRecorder(system.amqp_url) as events,
    ):
        await connected(system, {("alice", HOST_A), ("bob", HOST_B)})

        # 1. `lp -U alice` from host B, where only bob's desktop is: alice is asked, though
        # she charges automatically; she does not answer and the job is cancelled, uncharged.
        job = cups.cups.lp(
            "desk-quick", document(system), "alice", f"job-originating-host-name={HOST_B}"
        )
        first = await platen_job(events, 0)
        popup = await alice_desktop.popup(first)
        assert popup.prompt.kind == "confirm"
        assert popup.prompt.messages[0].startswith(
            f"Did you print 'report-3.pdf' from {HOST_B} at "
        ), popup.prompt.messages
        # Her client shows it as that question, in its own popup.
        assert popup.title() == "Did you print this?"
        question = find(popup, "identity_question").cget("text")
        assert str(question).startswith(f"Did you print 'report-3.pdf' from {HOST_B} at ")
        assert find(popup, "print").cget("text") == "Yes, print it"
        assert captured_of(events, first).identity == "unverified"
        info = await job_state(cups, "desk-quick", job, {CANCELED, ABORTED}, timeout=60)
        assert "before its deadline" in info["job-printer-state-message"]
        assert printer.received() == []
        alice = system.user_json("alice")
        assert (D(alice["balance"]), D(alice["held"])) == (D("5.00"), D("0.00"))

        # 2. The same from host B, and alice confirms it: printed and charged to her.
        job = cups.cups.lp("desk", document(system), "alice", f"job-originating-host-name={HOST_B}")
        second = await platen_job(events, 1)
        popup = await alice_desktop.popup(second)
        assert popup.prompt.messages[0].startswith("Did you print 'report-3.pdf'")
        find(popup, "print").invoke()  # "Yes, print it"
        await job_state(cups, "desk", job, {COMPLETED}, timeout=90)
        await eventually(lambda: _charged(events, second), timeout=30)
        assert len(printer.received()) == 1
        assert D(system.user_json("alice")["balance"]) == D("4.70")

        # 3. alice prints from host A, where her desktop alone is: no question.
        job = cups.cups.lp("desk", document(system), "alice", f"job-originating-host-name={HOST_A}")
        third = await platen_job(events, 2)
        await job_state(cups, "desk", job, {COMPLETED}, timeout=90)
        assert captured_of(events, third).identity == "present"
        assert [r for r in events.of_type("job.input_required") if r.correlation_id == third] == []
        assert not alice_desktop.asked(third)
        assert len(printer.received()) == 2
        await eventually(lambda: _charged(events, third), timeout=30)
        assert D(system.user_json("alice")["balance"]) == D("4.40")

        # 4. bob on host A says, in every way a client can, that he is on host B: the
        # broker's view is what counts, so his job from host B is not proven his.
        forged = await aio_pika.connect(
            bob_url,
            client_properties={
                "connection_name": HOST_B,
                "peer_host": HOST_B,
                "host": HOST_B,
                "information": f"desktop on {HOST_B}",
            },
        )
        async with forged:
            await bob_on_b.close()  # only the forged connection is left
            await connected(system, {("bob", HOST_A)})

            async def gone():
                async with BrokerAdmin(system.ids.monitor_url, system.vhost) as admin:
                    return ("bob", HOST_B) not in set(await admin.peers())

            assert await eventually(gone, timeout=60, interval=0.5)
            job = cups.cups.lp(
                "desk-quick", document(system), "bob", f"job-originating-host-name={HOST_B}"
            )
            fourth = await platen_job(events, 3)
            await events.wait_for("job.input_required", 2, timeout=60)
            assert captured_of(events, fourth).identity == "unverified"
            await job_state(cups, "desk-quick", job, {CANCELED, ABORTED}, timeout=60)
        assert len(printer.received()) == 2
        assert D(system.user_json("bob")["balance"]) == D("5.00")
    # What job-capture logged names the host and who was there, never a credential.
    log = system.services.log("job-capture")
    assert "desktop presence checked" in log and "password" not in log


async def _charged(events, job_id: str) -> bool:
    return any(r.correlation_id == job_id for r in events.of_type("job.charged"))


async def test_a_trusted_queue_is_named_by_status_and_in_every_log_line_of_its_jobs(system, cups):
    system.ctl("printer", "add", "lab-color", "--price-per-page", "0.10")
    system.ctl("user", "add", "alice", "--balance", "5.00")
    status = system.ctl("status").stdout
    trusted = "TRUSTED queues (the CUPS user name is charged unproven): "
    assert trusted + "broken, lab-color, lab-quick" in status
    shown = system.ctl("printer", "identity", "desk").stdout
    assert "desk: identity at print: desktop (the default)" in shown
    async with EventRecorder(system.amqp_url) as events:
        job = cups.cups.lp("lab-color", document(system), "alice")
        await job_state(cups, "lab-color", job, {COMPLETED}, timeout=90)
        [charged] = await events.wait_for("job.charged", 1, timeout=30)
    job_id = charged.correlation_id
    # notification's line about this job is written as it takes that same `job.charged`:
    # the printed notice on alice's desktop is the last thing done for it.
    await system.desktop_messages(
        "alice", until=lambda m: isinstance(m, PrintedNotice) and str(m.job_id) == job_id
    )
    # Every service's lines: the mark travels with the job's messages (platen-marks).
    for service in ("job-capture", "pricing", "account-ledger", "notification"):
        lines = [
            json.loads(line)
            for line in system.services.log(service).splitlines()
            if line.startswith("{") and job_id in line
        ]
        assert lines, service
        assert all(line.get("identity") == "trusted" for line in lines), (service, lines)
