"""Print servers are identities: each signs in as itself, its CUPS jobs get ids nobody can
predict, and it can neither speak for another print server nor touch its jobs.

Real cupsd, real RabbitMQ (which checks every message's user_id), real job-capture."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import stat
import uuid
from decimal import Decimal as D
from urllib.parse import unquote, urlsplit

import aio_pika
import pikepdf
import pytest
from aiormq.exceptions import ChannelAccessRefused

from platen import rpc
from platen.broker_setup import print_servers
from platen.cups_backend import main
from platen.cups_backend.config import load
from platen.events.jobs import GetJobStatus, JobStatus, ReportOutcome, SubmitJob
from platen.events.routing import COMMANDS, REPLIES, decision_key, decisions_of
from platen.rpc import RequestFailed, amqp_message
from platen.testing.documents import make_pdf
from platen.testing.identities import USER_PREFIX
from tests.cups.test_cups_capture import COMPLETED, answer, document, job_state
from tests.e2e.helpers import EventRecorder, eventually, query

NOT_YOURS = "not submitted by this print server"


def cups_submission(job_id: uuid.UUID, *, source: str = "cups", user: str = "bob") -> SubmitJob:
    return SubmitJob(
        job_id=job_id,
        user=user,
        printer="lab-color",
        document_name="forged.pdf",
        document=base64.b64encode(make_pdf(1)),
        source=source,
    )


async def balance_is(system, amount: str) -> bool:
    async def check():
        value = await asyncio.to_thread(lambda: system.user_json("alice")["balance"])
        return D(value) == D(amount) or None

    return bool(await eventually(check, timeout=60))


async def test_two_print_servers_with_the_same_cups_job_numbers_get_different_job_ids(
    system, cups, cups_b
):
    system.ctl("printer", "add", "lab-color", "--price-per-page", "0.10")
    system.ctl("user", "add", "alice", "--balance", "5.00")
    job_a = cups.cups.lp("lab-color", document(system, 2), "alice")
    job_b = cups_b.cups.lp("lab-color", document(system, 2), "alice")
    assert job_a == job_b == 1  # two cupsds: the same CUPS job number
    await job_state(cups, "lab-color", job_a, {COMPLETED}, timeout=120)
    await job_state(cups_b, "lab-color", job_b, {COMPLETED}, timeout=120)
    rows = await query(
        system.database_url,
        "SELECT job_id, print_server, cups_job_id, state FROM job_capture.jobs",
    )
    assert len(rows) == 2 and {r["cups_job_id"] for r in rows} == {1}
    assert sorted(r["print_server"] for r in rows) == sorted([cups.name, cups_b.name])
    assert rows[0]["job_id"] != rows[1]["job_id"]
    assert {r["job_id"].version for r in rows} == {4}  # random, not derived from the number
    assert {r["state"] for r in rows} == {"printed"}
    assert await balance_is(system, "4.60")  # each job charged, once
    # CUPS is done with both jobs: neither print server keeps their ids any longer.
    for rig in (cups, cups_b):
        assert list((rig.cups.backend_config.parent / "state").iterdir()) == []


async def test_a_print_server_cannot_ask_about_report_on_or_resubmit_anothers_job(system, cups):
    system.ctl("printer", "add", "lab-color", "--price-per-page", "0.10")
    system.ctl("user", "add", "alice", "--balance", "5.00")
    system.ctl("user", "set", "alice", "--selection", "confirm")
    async with EventRecorder(system.amqp_url) as events:
        job = cups.cups.lp("lab-color", document(system, 2), "alice")
        [ask] = await events.wait_for("job.input_required", 1, timeout=60)
    job_id = uuid.UUID(ask.correlation_id)
    before = await query(system.database_url, "SELECT * FROM job_capture.jobs")

    async with rpc.connect(system.print_server("intruder")) as intruder:
        with pytest.raises(RequestFailed, match=NOT_YOURS):
            await intruder.request("capture.job.status", GetJobStatus(job_id=job_id))
        # Reported as failed by another print server, the job would print uncharged.
        with pytest.raises(RequestFailed, match=NOT_YOURS):
            await intruder.request(
                "capture.job.outcome", ReportOutcome(job_id=job_id, printed=False, reason="x")
            )
        with pytest.raises(RequestFailed, match=NOT_YOURS):
            await intruder.request("capture.submit", cups_submission(job_id), timeout=60)
        # Nor may a print server submit API jobs (which print on release, unseen).
        with pytest.raises(RequestFailed, match="CUPS jobs only"):
            await intruder.request("capture.submit", cups_submission(uuid.uuid4(), source="api"))
        # Leaving out who sends does not pass for an administrator: refused (job-capture
        # logs why, below), and not answered either: a reply goes only to a key of the
        # request's own, broker-checked user.
        intruder.user_id = None
        with pytest.raises(RequestFailed, match="no answer"):
            await intruder.request("capture.job.status", GetJobStatus(job_id=job_id), timeout=5)

    after = await query(system.database_url, "SELECT * FROM job_capture.jobs")
    assert after == before and after[0]["print_server"] == cups.name

    # The last request is logged when job-capture takes it, which the 5 s the test waited
    # for its (absent) answer do not promise on a loaded machine.
    unanswered = "request not answered: its reply_to is not its sender's"

    async def logged() -> bool:
        log = system.services.log("job-capture")
        return "does not say who sends it" in log and unanswered in log

    assert await eventually(logged)
    refusals = system.services.log("job-capture")
    assert refusals.count("request refused") >= 5 and f"{NOT_YOURS}" in refusals

    # The job's own print server is still answered: the job prints and is charged once.
    await answer(system, ask.correlation_id, "alice")
    await job_state(cups, "lab-color", job, {COMPLETED}, timeout=120)
    assert await balance_is(system, "4.80")
    assert len(cups.printers["lab-color"].received()) == 1


async def test_a_print_server_cannot_sign_its_requests_as_another(system):
    """The broker, not Platen, refuses a message whose user_id is not the signed-in user:
    print server A cannot pass for B."""
    url_a = system.print_server("print-a")
    system.print_server("print-b")
    b_user = print_servers.broker_user("print-b", USER_PREFIX)
    job_id = uuid.uuid4()
    connection = await aio_pika.connect(url_a)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(COMMANDS, ensure=False)
        forged = amqp_message(cups_submission(job_id), user_id=b_user)
        with pytest.raises(aio_pika.exceptions.ChannelClosed) as refused:
            await exchange.publish(forged, routing_key="capture.submit")
    assert "user_id" in str(refused.value) and "print-a" in str(refused.value)
    # Signed as itself, the same print server is heard (so the refusal was the forgery's).
    async with rpc.connect(url_a) as client:
        status = await client.request("capture.job.status", GetJobStatus(job_id=job_id))
    assert isinstance(status, JobStatus) and status.state == "unknown"
    assert await query(system.database_url, "SELECT job_id FROM job_capture.jobs") == []


async def test_a_decision_is_pushed_to_its_own_print_server_and_to_no_other(system):
    """The broker, not Platen, keeps a job's decision to its print server: B may bind
    neither A's decision key nor a wildcard over them; A's backend, bound under its own,
    is pushed the decision as soon as it commits (job-capture's `decisions`)."""
    system.ctl("printer", "add", "lab-color", "--price-per-page", "0.10")
    system.ctl("printer", "identity", "lab-color", "trusted")  # no desktop needed
    system.ctl("user", "add", "alice", "--balance", "5.00")
    url_a = system.print_server("print-a")
    url_b = system.print_server("print-b")
    job_id = uuid.uuid4()
    connection = await aio_pika.connect(url_b)
    async with connection:
        refused = (decision_key("print-a", job_id), decisions_of("print-a"), "decision.#")
        for key in (*refused, f"decision.*.{job_id}", "#"):
            channel = await connection.channel()
            queue = await channel.declare_queue(exclusive=True)
            with pytest.raises(ChannelAccessRefused):
                await queue.bind(REPLIES, routing_key=key)
    # A refused key costs only the channel it was asked on: the client's replies (on a
    # print server's agent, every job's) still arrive at once.
    async with rpc.connect(url_b) as client:
        with pytest.raises(ChannelAccessRefused):
            await client.listen(decision_key("print-a", job_id), lambda raw: None)
        await client.unlisten(decision_key("print-a", job_id))
        status = await client.request("capture.job.status", GetJobStatus(job_id=job_id), timeout=5)
        assert status.state == "unknown"
    # Nor may B forge A's decision (the backend takes a pushed decision as its answer).
    forged = JobStatus(job_id=job_id, state="released")
    async with rpc.connect(url_b) as client:
        exchange = await client.channel.get_exchange(REPLIES, ensure=False)
        with pytest.raises(ChannelAccessRefused):
            await exchange.publish(
                amqp_message(forged, user_id=client.user_id),
                routing_key=decision_key("print-a", job_id),
            )

    async with rpc.connect(url_a) as client:
        pushed: asyncio.Future = asyncio.get_running_loop().create_future()

        def on_push(raw) -> None:
            if not pushed.done():
                pushed.set_result(raw)

        await client.listen(decision_key("print-a", job_id), on_push)
        submission = cups_submission(job_id, user="alice")
        await client.request("capture.submit", submission, timeout=60)
        raw = await asyncio.wait_for(pushed, 60)
    status = JobStatus.model_validate_json(raw.body)
    assert (status.job_id, status.state) == (job_id, "released")
    # As job-capture sends it, the push is the decision the backend takes (no question).
    assert main.pushed_decision(raw, job_id) == status
    assert main.pushed_decision(raw, uuid.uuid4()) is None  # another job's: only a wake-up


async def test_an_agent_binds_its_print_servers_decision_keys_once_for_all_its_jobs(system, vhosts):
    """A print server's agent serves every job on one connection: its reply queue is
    bound once under all its own decision keys (`decisions_of`, which the broker lets it
    bind), each job after only listens, and a job's decision reaches that job's listener
    through the one binding; a listener taken away leaves the binding to the next job."""
    system.ctl("printer", "add", "lab-color", "--price-per-page", "0.10")
    system.ctl("printer", "identity", "lab-color", "trusted")
    system.ctl("user", "add", "alice", "--balance", "5.00")
    under = decisions_of("print-a")

    def decision_bindings() -> list[str]:
        found = vhosts.http.get(f"/api/exchanges/{system.vhost}/{REPLIES}/bindings/source")
        found.raise_for_status()
        keys = (b["routing_key"] for b in found.json())
        return sorted(key for key in keys if key.startswith("decision."))

    async with rpc.connect(system.print_server("print-a")) as client:
        first, second = uuid.uuid4(), uuid.uuid4()
        await client.listen(decision_key("print-a", first), lambda raw: None, under=under)
        pushed: asyncio.Future = asyncio.get_running_loop().create_future()
        await client.listen(decision_key("print-a", second), pushed.set_result, under=under)
        assert decision_bindings() == [under]
        await client.unlisten(decision_key("print-a", first))
        assert decision_bindings() == [under]
        await client.request("capture.submit", cups_submission(second, user="alice"), timeout=60)
        raw = await asyncio.wait_for(pushed, 60)
    assert main.pushed_decision(raw, second).state == "released"


async def test_platenctl_printserver_add_list_remove(system):
    config_path = system.tmp / "lab-west.conf"
    added = system.ctl(
        "printserver", "add", "lab-west", "--output", str(config_path), "--state-dir", "/srv/ids"
    )
    assert stat.S_IMODE(config_path.stat().st_mode) == 0o600
    config = load(str(config_path))
    assert (config.server_id, config.state_dir) == ("lab-west", "/srv/ids")
    parts = urlsplit(config.amqp_url)
    assert unquote(parts.username or "") == "platen-print-server.lab-west"
    password = unquote(parts.password or "")
    assert len(password) >= 24
    assert password not in added.stdout + added.stderr  # never shown
    for service in system.services.procs:
        assert password not in system.services.log(service)  # never logged
    # nor kept: the reply that carried it is not stored for redeliveries.
    replies = await query(
        system.database_url,
        "SELECT reply_body FROM notification.inbox WHERE reply_body IS NOT NULL",
    )
    assert not any(password.encode() in bytes(r["reply_body"]) for r in replies)
    # It signs in as itself and is answered as a print server.
    async with rpc.connect(config.amqp_url) as client:
        status = await client.request("capture.job.status", GetJobStatus(job_id=uuid.uuid4()))
        assert status.state == "unknown"
        with pytest.raises(RequestFailed):  # and may do no more than a print server
            await client.request("ledger.user.show", GetJobStatus(job_id=uuid.uuid4()))
    listed = system.ctl("printserver", "list").stdout
    assert "lab-west\tplaten-print-server.lab-west" in listed

    # Added again: a new password, and the old one no longer signs in.
    system.ctl("printserver", "add", "lab-west", "--output", str(system.tmp / "new.conf"))
    renewed = load(str(system.tmp / "new.conf")).amqp_url
    with pytest.raises(RequestFailed, match="cannot reach"):
        async with rpc.connect(config.amqp_url):
            pass
    async with rpc.connect(renewed):
        pass

    # Removed: signed out for good.
    system.ctl("printserver", "remove", "lab-west")
    with pytest.raises(RequestFailed, match="cannot reach"):
        async with rpc.connect(renewed):
            pass
    assert "lab-west" not in system.ctl("printserver", "list").stdout
    refused = system.ctl("printserver", "add", "bad name", check=False)
    assert refused.returncode == 1 and "not a print server name" in refused.stderr


async def test_a_job_cups_runs_again_resumes_the_same_platen_job(system, cups):
    """The backend hands a waiting job back to CUPS (Platen unreachable: held), and CUPS
    runs it again once an administrator releases it: the id kept on the print server
    brings it back to the same Platen job, captured once, charged once. And the second
    run prints the document the first one prepared and Platen analysed, even when what
    CUPS hands it differs (as PostScript run again may draw something else)."""
    system.ctl("printer", "add", "lab-color", "--price-per-page", "0.10")
    system.ctl("user", "add", "alice", "--balance", "5.00")
    system.ctl("user", "set", "alice", "--selection", "confirm")
    config = cups.cups.backend_config
    config.write_text(config.read_text() + "\n[printer:lab-color]\noffline_wait = 2\n")
    state = config.parent / "state"
    async with EventRecorder(system.amqp_url) as events:
        job = cups.cups.lp("lab-color", document(system, 2), "alice")
        [ask] = await events.wait_for("job.input_required", 1, timeout=60)
        system.services.kill("job-capture")
        # Unanswered for 2 s, the backend exits "held" (3): CUPS keeps the job, and the
        # print server keeps its id.
        await job_state(cups, "lab-color", job, {"pending-held"}, timeout=60)
        # Kept on the print server: the job's id and the document it analysed.
        assert sorted(p.suffix for p in state.iterdir()) == ["", ".document"]
        spooled = cups.cups.folder / "spool" / f"d{job:05d}-001"
        spooled.write_bytes(make_pdf(5))  # what CUPS hands the second run: 5 pages
        system.services.start("job-capture")
        await answer(system, ask.correlation_id, "alice")
        await events.wait_for("job.authorized", 1, timeout=30)
        cups.cups.run("lp", "-i", f"lab-color-{job}", "-H", "resume")
        await job_state(cups, "lab-color", job, {COMPLETED}, timeout=120)
        await events.wait_for("job.charged", 1, timeout=60)
        await asyncio.sleep(1)
        assert len(events.of_type("job.captured")) == 1
        assert len(events.of_type("job.charged")) == 1
    rows = await query(system.database_url, "SELECT job_id, state FROM job_capture.jobs")
    assert [(str(r["job_id"]), r["state"]) for r in rows] == [(ask.correlation_id, "printed")]
    [received] = cups.printers["lab-color"].received()
    sha = await query(system.database_url, "SELECT document_sha256 FROM job_capture.jobs")
    assert hashlib.sha256(received.read_bytes()).hexdigest() == sha[0]["document_sha256"]
    assert len(pikepdf.open(io.BytesIO(received.read_bytes())).pages) == 2
    assert await balance_is(system, "4.80")
    assert list(state.iterdir()) == []  # CUPS is done with it: id and document forgotten
