"""The foundation, end to end: four services as processes, real broker, real database."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys
from decimal import Decimal

import aio_pika
import pikepdf
import pytest

from platen.events.desktop import DeniedNotice, LowBalanceNotice, PrintedNotice
from platen.localstack.services import MODULES
from platen.messaging.codec import HEADER_ERROR, HEADER_QUEUE
from platen.messaging.topology import all_queues
from platen.testing.documents import make_pdf
from tests.e2e.helpers import (
    EventRecorder,
    eventually,
    handled,
    http_get,
    ledger_problems,
    metrics_addresses,
    query,
    republish,
    scrape,
    submit_jobs,
)

D = Decimal


def encrypted_pdf() -> bytes:
    out = io.BytesIO()
    with pikepdf.open(io.BytesIO(make_pdf(2))) as pdf:
        pdf.save(out, encryption=pikepdf.Encryption(user="secret", owner="owner"))
    return out.getvalue()


def write_pdf(system, name: str, pages: int):
    path = system.tmp / name
    path.write_bytes(make_pdf(pages))
    return path


async def charges(system, job_id: str | None = None) -> list:
    return await query(
        system.database_url,
        "SELECT t.id, sum(e.amount) AS total, count(e.id) AS n FROM ledger.transactions t "
        "JOIN ledger.entries e ON e.transaction_id = t.id "
        "WHERE t.kind = 'charge' AND ($1::uuid IS NULL OR t.job_id = $1::uuid) GROUP BY t.id",
        job_id,
    )


async def test_alice_prints_and_is_charged_bob_is_denied(system):
    system.ctl("printer", "add", "lab-1", "--price-per-page", "0.10")
    system.ctl("user", "add", "alice", "--balance", "5.00")
    system.ctl("user", "add", "bob", "--balance", "0.10")
    report = write_pdf(system, "report.pdf", 3)
    # Each service serves its metrics and health; what it counted before alice's job.
    addresses = metrics_addresses(system)
    assert set(addresses) == set(system.services.procs)
    for address in addresses.values():
        status, body = await http_get(f"{address}/health/ready")
        assert (status, json.loads(body)) == (200, {"ready": True, "failed": {}})
    before = {name: await scrape(address) for name, address in addresses.items()}

    out = system.ctl("print", str(report), "--user", "alice", "--printer", "lab-1", "--wait")
    job_id = out.stdout.splitlines()[0]
    assert "printed" in out.stdout and "charged 0.30, balance 4.70" in out.stdout
    # One job: each message about it handled once, by the service it is for.
    one_each = {
        "job-capture": ("capture.submit", "job.authorized"),
        "pricing": ("job.captured",),
        "account-ledger": ("job.priced", "job.printed"),
        "notification": ("job.charged",),
    }

    async def counted_once() -> bool:
        # A delivery is counted once acknowledged, which may be after the reply came.
        for name, types in one_each.items():
            now = await scrape(addresses[name])
            if any(handled(now, t) != handled(before[name], t) + 1 for t in types):
                return False
        return True

    assert await eventually(counted_once, timeout=60)
    capture = await scrape(addresses["job-capture"])
    analysed = ("platen_analysis_seconds_count", frozenset({("outcome", "analysed")}))
    assert capture[analysed] == before["job-capture"][analysed] + 1
    assert ("platen_jobs", frozenset({("state", "captured")})) in capture
    assert capture[("platen_outbox_refused", frozenset())] == 0
    assert D(system.user_json("alice")["balance"]) == D("4.70")
    [charge] = await charges(system, job_id)
    assert charge["total"] == 0 and charge["n"] == 2
    assert await ledger_problems(system.database_url) == []

    notices = await system.desktop_messages("alice", until=lambda m: isinstance(m, PrintedNotice))
    printed = notices[-1]
    assert (printed.document_name, printed.printer, printed.sides) == ("report.pdf", "lab-1", 3)
    assert (printed.cost, printed.balance) == (D("0.30"), D("4.70"))

    denied = system.ctl(
        "print", str(report), "--user", "bob", "--printer", "lab-1", "--wait", check=False
    )
    assert denied.returncode == 2
    assert "insufficient credit" in denied.stdout
    bob = system.user_json("bob")
    assert (D(bob["balance"]), D(bob["held"])) == (D("0.10"), D("0.00"))
    notices = await system.desktop_messages("bob", until=lambda m: isinstance(m, DeniedNotice))
    seen = notices[-1]
    # bob's 0.10 is under the default low-credit threshold: he was warned when added.
    assert any(isinstance(m, LowBalanceNotice) for m in notices[:-1])
    assert "insufficient credit" in seen.reason and "0.30" in seen.reason
    bob_job = denied.stdout.splitlines()[0]
    assert await charges(system, bob_job) == []

    # `print --wait` returns on the ledger's `job.denied`; job-capture records the denial
    # when it takes that event, in its own time.
    def listed() -> set:
        jobs = json.loads(system.ctl("jobs", "--json").stdout)
        return {(j["user"], j["state"], j["cost"]) for j in jobs}

    async def both_final() -> bool:
        return ("bob", "denied", "0.30") in listed()

    await eventually(both_final)
    assert listed() == {("alice", "printed", "0.30"), ("bob", "denied", "0.30")}


async def test_console_client_shows_the_printed_line(system):
    system.ctl("printer", "add", "lab-1", "--price-per-page", "0.10")
    system.ctl("user", "add", "alice", "--balance", "5.00")
    client = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "platen.client.main",
            "--user",
            "alice",
            "--console",
            "--amqp-url",
            system.amqp_url,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        system.ctl(
            "print",
            str(write_pdf(system, "report.pdf", 3)),
            "--user",
            "alice",
            "--printer",
            "lab-1",
            "--wait",
        )
        lines = []
        loop = asyncio.get_running_loop()
        while not any(line.startswith("Printed") for line in lines):
            line = await asyncio.wait_for(loop.run_in_executor(None, client.stdout.readline), 20)
            lines.append(line.strip())
        assert 'Printed "report.pdf" on lab-1: 3 pages, 0.30. Balance 4.70' in lines
    finally:
        client.terminate()
        client.wait(10)


async def test_redelivered_priced_and_printed_change_nothing(system):
    system.ctl("printer", "add", "lab-1", "--price-per-page", "0.10")
    system.ctl("user", "add", "alice", "--balance", "5.00")
    async with EventRecorder(system.amqp_url) as events:
        out = system.ctl(
            "print",
            str(write_pdf(system, "r.pdf", 3)),
            "--user",
            "alice",
            "--printer",
            "lab-1",
            "--wait",
        )
        job_id = out.stdout.splitlines()[0]
        await events.wait_for("job.charged")
        [priced] = events.of_type("job.priced", job_id)
        [printed] = events.of_type("job.printed", job_id)
        for raw in (priced, printed, priced, printed):
            await republish(system.amqp_url, raw)
        await asyncio.sleep(3)  # give the services time to (not) act on the copies
        assert len(events.of_type("job.authorized", job_id)) == 1
        assert len(events.of_type("job.charged", job_id)) == 1
    assert D(system.user_json("alice")["balance"]) == D("4.70")
    assert len(await charges(system, job_id)) == 1
    skipped = await query(
        system.database_url,
        "SELECT count(*) AS n FROM ledger.inbox WHERE message_id = ANY($1)",
        [priced.message_id, printed.message_id],
    )
    assert skipped[0]["n"] == 2  # each applied once, recorded once


async def test_malformed_message_on_every_queue_is_dead_lettered_and_work_goes_on(system):
    conn = await aio_pika.connect(system.amqp_url)
    async with conn:
        ch = await conn.channel(publisher_confirms=True)
        for queue in all_queues():
            await ch.default_exchange.publish(
                aio_pika.Message(
                    b"\x00garbage", type="job.priced", headers={"platen-schema-version": 1}
                ),
                routing_key=queue,
            )
        for queue in all_queues():
            dlq = await ch.get_queue(f"{queue}.dlq")
            raw = await eventually(lambda dlq=dlq: dlq.get(fail=False), timeout=30)
            assert raw is not None, f"nothing dead-lettered from {queue}"
            await raw.ack()
            assert raw.headers.get(HEADER_QUEUE) == queue, (queue, raw.headers, raw.body[:200])
            assert (
                "not JSON" in raw.headers[HEADER_ERROR].decode()
                if isinstance(raw.headers[HEADER_ERROR], bytes)
                else "not JSON" in raw.headers[HEADER_ERROR]
            )
    # Every service still works: all answer, and a job flows through every queue.
    system.wait_ready()
    system.ctl("printer", "add", "lab-1", "--price-per-page", "0.10")
    system.ctl("user", "add", "alice", "--balance", "5.00")
    out = system.ctl(
        "print",
        str(write_pdf(system, "r.pdf", 2)),
        "--user",
        "alice",
        "--printer",
        "lab-1",
        "--wait",
    )
    assert "charged 0.20, balance 4.80" in out.stdout


@pytest.mark.parametrize(
    ("setup", "content", "reason"),
    [
        ("no-printer", make_pdf(1), "printer 'lab-9' is not set up"),
        ("no-user", make_pdf(1), "user 'carol' has no account"),
        ("ok", b"hello, I am plain text", "unsupported document format"),
        ("ok", make_pdf(5)[:300], "damaged or truncated"),
        ("ok", encrypted_pdf(), "password-protected"),
        ("ok", b"", "the document is empty"),
        # Colour that the analysis cannot see and a printer prints (docs/security.md,
        # "PostScript from the API"): refused, whatever it draws.
        (
            "ok",
            b"%!PS\nmark [/Separation /Black /DeviceRGB {pop 1 0 0}] //setcolorspace"
            b" cleartomark 1 setcolor 100 100 200 200 rectfill showpage\n",
            "PostScript is not accepted from the API",
        ),
    ],
    ids=[
        "unknown-printer",
        "unknown-user",
        "not-a-pdf",
        "truncated-pdf",
        "encrypted",
        "empty",
        "postscript",
    ],
)
# The six share one running system (none is charged, so `charges` stays empty for all),
# each with a user of its own: alice-<case>, and carol, who is never added.
@pytest.mark.shared_system
async def test_bad_jobs_are_denied_with_a_reason_the_user_sees(
    system, setup, content, reason, request
):
    system.ctl("printer", "add", "lab-1", "--price-per-page", "0.10")
    user = "carol" if setup == "no-user" else f"alice-{request.node.callspec.id}"
    printer = "lab-9" if setup == "no-printer" else "lab-1"
    if setup != "no-user":
        system.ctl("user", "add", user, "--balance", "5.00")
    doc = system.tmp / "doc.pdf"
    doc.write_bytes(content)
    out = system.ctl("print", str(doc), "--user", user, "--printer", printer, "--wait", check=False)
    assert out.returncode == 2, out.stdout + out.stderr
    assert reason in out.stdout
    notices = await system.desktop_messages(user, until=lambda m: isinstance(m, DeniedNotice))
    assert isinstance(notices[-1], DeniedNotice) and reason in notices[-1].reason
    assert await charges(system) == []


@pytest.mark.service_env(PLATEN_MAX_DOCUMENT_BYTES="2000")
async def test_document_over_the_size_limit_is_denied(system):
    system.ctl("printer", "add", "lab-1", "--price-per-page", "0.10")
    system.ctl("user", "add", "alice", "--balance", "5.00")
    big = write_pdf(system, "big.pdf", 40)
    out = system.ctl(
        "print", str(big), "--user", "alice", "--printer", "lab-1", "--wait", check=False
    )
    assert out.returncode == 2
    assert "too large" in out.stdout and "the limit is 2000" in out.stdout


def test_platenctl_refuses_a_file_over_the_limit_before_sending(tmp_path):
    big = tmp_path / "huge.pdf"
    with big.open("wb") as f:
        f.truncate(17 * 1024 * 1024)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "platen.ctl",
            "print",
            str(big),
            "--user",
            "alice",
            "--printer",
            "lab-1",
        ],
        capture_output=True,
        text=True,
        env={"PLATEN_AMQP_URL": "amqp://nobody@127.0.0.1:1/"},
    )
    assert out.returncode == 1
    assert "largest document accepted" in out.stderr


async def test_killing_services_mid_flight_loses_no_job_and_charges_none_twice(system):
    system.ctl("printer", "add", "lab-1", "--price-per-page", "0.10")
    system.ctl("user", "add", "alice", "--balance", "100.00")
    n = 40
    async with EventRecorder(system.amqp_url) as events:
        ids = await submit_jobs(system.amqp_url, "alice", "lab-1", make_pdf(3), n)
        # Kill the ledger once the first charge lands, while the rest are in flight.
        # Capture and pricing go on without it; kill capture too once more jobs are
        # priced (their authorisations now wait in the ledger's queue). Start both again.
        await events.wait_for("job.charged", 1, timeout=60)
        system.services.kill("account-ledger")
        # What the dead ledger had committed: some jobs charged, not all (else nothing
        # was in flight and the kill proved nothing).
        charged_at_kill = len(await charges(system))
        assert 0 < charged_at_kill < n
        priced = len(events.of_type("job.priced"))
        await events.wait_for("job.priced", min(n, priced + 5), timeout=60)
        system.services.kill("job-capture")
        await asyncio.sleep(1)
        system.services.start("job-capture")
        system.services.start("account-ledger")
        await events.wait_for("job.charged", n, timeout=120)
        await asyncio.sleep(2)
        charged = {m.correlation_id for m in events.of_type("job.charged")}
    assert charged == {str(j) for j in ids}
    rows = await charges(system)
    assert len(rows) == n
    assert all(r["total"] == 0 for r in rows)
    assert D(system.user_json("alice")["balance"]) == D("100.00") - n * D("0.30")
    states = await query(
        system.database_url, "SELECT state, count(*) AS n FROM job_capture.jobs GROUP BY state"
    )
    assert {r["state"]: r["n"] for r in states} == {"printed": n}
    holds = await query(
        system.database_url, "SELECT state, count(*) AS n FROM ledger.holds GROUP BY state"
    )
    assert {r["state"]: r["n"] for r in holds} == {"posted": n}
    assert await ledger_problems(system.database_url) == []


def json_lines(text: str) -> list[dict]:
    lines = []
    for line in text.splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


async def test_every_log_line_about_a_job_carries_its_id(system):
    system.ctl("printer", "add", "lab-1", "--price-per-page", "0.10")
    system.ctl("user", "add", "alice", "--balance", "5.00")
    system.ctl("user", "add", "bob", "--balance", "0.10")
    report = write_pdf(system, "report.pdf", 3)
    empty = system.tmp / "empty.pdf"
    empty.write_bytes(b"")
    runs = {
        "printed": ("alice", report, 0),
        "denied": ("bob", report, 2),
        "refused": ("alice", empty, 2),
    }
    jobs = {}
    for name, (user, doc, code) in runs.items():
        out = system.ctl(
            "print", str(doc), "--user", user, "--printer", "lab-1", "--wait", check=False
        )
        assert out.returncode == code, out.stdout + out.stderr
        jobs[name] = out.stdout.splitlines()[0]
    # The desktop notices are the last thing done for these jobs: once they are there,
    # every line about them is in the logs.
    await system.desktop_messages("alice", until=lambda m: isinstance(m, DeniedNotice))
    await system.desktop_messages("bob", until=lambda m: isinstance(m, DeniedNotice))

    seen: dict[str, set[str]] = {job: set() for job in jobs.values()}
    for service in ("job-capture", "pricing", "account-ledger", "notification"):
        for line in json_lines(system.services.log(service)):
            assert line.get("job_id", "absent") is not None, (service, line)
            text = json.dumps(line)
            for job in jobs.values():
                if job in text:
                    assert line.get("job_id") == job, (service, line)
                    seen[job].add(f"{service}: {line['event']}")
    assert "job-capture: job captured" in seen[jobs["printed"]]
    assert "job-capture: job printed" in seen[jobs["printed"]]
    assert "job-capture: job captured" in seen[jobs["denied"]]
    assert "job-capture: job refused at capture" in seen[jobs["refused"]]
    # Each service that acted on a job said so, with the job's id.
    everyone = {"job-capture", "pricing", "account-ledger", "notification"}
    expected = {
        "printed": everyone,
        "denied": everyone,
        "refused": {"job-capture", "notification"},  # never priced or held
    }
    for name, job in jobs.items():
        services = {line.split(":")[0] for line in seen[job]}
        assert expected[name] <= services, (name, seen[job])


def _started_on(system) -> dict[str, str]:
    """Each service's event loop, as its "service started" line says."""
    return {
        name: line["event_loop"]
        for name in MODULES
        for line in json_lines(system.services.log(name))
        if line.get("event") == "service started"
    }


async def _all_started_on(system, loop: str) -> bool:
    async def said() -> bool:
        return len(_started_on(system)) == len(MODULES)

    await eventually(said)  # a service answers once started: its line may still be on its way
    return _started_on(system) == dict.fromkeys(MODULES, loop)


async def test_every_service_runs_on_uvloop(system):
    assert await _all_started_on(system, "uvloop")


@pytest.mark.service_env(PLATEN_EVENT_LOOP="asyncio")
async def test_on_pythons_own_event_loop_a_job_is_printed_and_charged_the_same(system):
    assert await _all_started_on(system, "asyncio")
    system.ctl("printer", "add", "lab-1", "--price-per-page", "0.10")
    system.ctl("user", "add", "alice", "--balance", "5.00")
    report = write_pdf(system, "report.pdf", 3)
    out = system.ctl("print", str(report), "--user", "alice", "--printer", "lab-1", "--wait")
    assert "printed" in out.stdout and "charged 0.30, balance 4.70" in out.stdout
    [charge] = await charges(system, out.stdout.splitlines()[0])
    assert charge["total"] == 0 and charge["n"] == 2
    assert D(system.user_json("alice")["balance"]) == D("4.70")
