"""The ledger end to end: platenctl over the broker, the services as processes."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import aio_pika
import asyncpg
import pytest

from platen import rpc
from platen.events.accounts import AnswerJob, AnswerOutcome
from platen.events.desktop import LowBalanceNotice
from platen.events.jobs import JobPriced
from platen.events.routing import EVENTS
from platen.testing.documents import make_pdf
from tests.e2e.helpers import EventRecorder, command, eventually, submit_jobs

# One running system for the module: each test has users, accounts and printers of its
# own (alice, cat, eve, hal, sid; lab-1, lab-3) and reads only those.
pytestmark = pytest.mark.shared_system


def pdf(system, pages: int = 3):
    path = system.tmp / f"doc{pages}.pdf"
    path.write_bytes(make_pdf(pages))
    return str(path)


def verify(system) -> None:
    out = system.ctl("ledger", "verify")
    assert "ledger OK" in out.stdout


async def test_shared_account_money_commands_and_statement(system):
    system.ctl("printer", "add", "lab-1", "--price-per-page", "0.10")
    system.ctl("account", "add", "clients", "--charge-rate", "1.5")
    system.ctl("account", "add", "acme", "--parent", "clients")
    system.ctl("account", "grant", "clients", "--group", "sales")
    system.ctl("user", "add", "alice", "--balance", "5.00", "--group", "sales")
    system.ctl("user", "set", "alice", "--default-account", "clients/acme")
    system.ctl("topup", "clients/acme", "10.00", "--key", "po-1")
    system.ctl("topup", "clients/acme", "10.00", "--key", "po-1")  # same key: once

    out = system.ctl("print", pdf(system), "--user", "alice", "--printer", "lab-1", "--wait")
    job_id = out.stdout.splitlines()[0]
    assert "charged 0.45" in out.stdout  # 3 pages x 0.10 x 150 %
    acme = json.loads(system.ctl("account", "show", "clients/acme", "--json").stdout)
    assert D(acme["balance"]) == D("9.55") and D(acme["effective_charge_rate"]) == D("1.5")

    system.ctl("refund", job_id, "--amount", "0.20", "--reason", "misprint")
    system.ctl("refund", job_id, "--reason", "all of it")
    again = system.ctl("refund", job_id, "--reason", "again", check=False)
    assert again.returncode == 1 and "refunded in full" in again.stderr

    system.ctl("adjust", "alice", "-1.25", "--reason", "lost card")
    system.ctl("transfer", "alice", "clients/acme", "1.00", "--reason", "pay back")
    refused = system.ctl("transfer", "alice", "clients/acme", "100", check=False)
    assert refused.returncode == 1 and "cannot pay" in refused.stderr

    rows = list(csv.reader(io.StringIO(system.ctl("statement", "clients/acme", "--csv").stdout)))
    assert rows[0] == ["time", "transaction", "kind", "description", "job", "amount", "balance"]
    assert [(r[2], r[5], r[6]) for r in rows[1:]] == [
        ("top-up", "10.00", "10.00"),
        ("charge", "-0.45", "9.55"),
        ("refund", "0.20", "9.75"),
        ("refund", "0.25", "10.00"),
        ("transfer", "1.00", "11.00"),
    ]
    alice = system.user_json("alice")
    assert D(alice["balance"]) == D("5.00") - D("1.25") - D("1.00")
    assert alice["groups"] == ["sales"] and alice["default_account"] == "shared:clients/acme"
    verify(system)


# It counts every `job.input_required` and `job.authorized` on the exchange.
@pytest.mark.own_system
async def test_confirmation_answered_through_the_ledger(system):
    system.ctl("printer", "add", "lab-1", "--price-per-page", "0.10")
    system.ctl("user", "add", "bob", "--balance", "5.00")
    system.ctl("user", "set", "bob", "--selection", "confirm")
    async with EventRecorder(system.amqp_url) as events:
        [keep, drop] = await submit_jobs(system.amqp_url, "bob", "lab-1", make_pdf(2), 2)
        asks = await events.wait_for("job.input_required", 2)
        assert {a.correlation_id for a in asks} == {str(keep), str(drop)}
        assert events.of_type("job.authorized") == []
        # As the notification service forwards desktops' answers: the only sender the
        # ledger takes them from.
        async with rpc.connect(system.ids.services["notification"]) as client:
            ok = await client.request(
                "ledger.job.answer", AnswerJob(job_id=keep, user="bob", action="print")
            )
            assert isinstance(ok, AnswerOutcome) and ok.outcome == "authorized"
            try:
                await client.request(
                    "ledger.job.answer", AnswerJob(job_id=drop, user="mallory", action="print")
                )
                raise AssertionError("another user's answer was accepted")
            except rpc.RequestFailed as exc:
                assert "someone else" in str(exc)
            bye = await client.request(
                "ledger.job.answer", AnswerJob(job_id=drop, user="bob", action="cancel")
            )
            assert bye.outcome == "cancelled"
        await events.wait_for("job.charged", 1)
        await events.wait_for("job.cancelled", 1)

    # job-capture cancels the job when it takes the ledger's `job.cancelled`: after it.
    async def dropped() -> bool:
        jobs = json.loads(system.ctl("jobs", "--json").stdout)
        return any(j["job_id"] == str(drop) and j["state"] == "cancelled" for j in jobs)

    await eventually(dropped)
    jobs = {j["job_id"]: j for j in json.loads(system.ctl("jobs", "--json").stdout)}
    assert jobs[str(keep)]["state"] == "printed"
    assert jobs[str(drop)]["state"] == "cancelled"
    assert D(system.user_json("bob")["balance"]) == D("4.80")
    verify(system)


async def test_low_credit_reaches_the_desktop_once(system):
    system.ctl("printer", "add", "lab-3", "--price-per-page", "0.10")
    system.ctl("user", "add", "cat", "--balance", "1.50")
    system.ctl("user", "set", "cat", "--low-balance", "1.00")
    for _ in range(3):  # 1.20, 0.90 (crossing), 0.60
        system.ctl("print", pdf(system), "--user", "cat", "--printer", "lab-3", "--wait")
    notices = await system.desktop_messages("cat", timeout=5)
    lows = [n for n in notices if isinstance(n, LowBalanceNotice)]
    assert len(lows) == 1 and lows[0].available == D("0.90")
    verify(system)


async def test_errors_are_clear(system):
    out = system.ctl("topup", "nobody", "5", check=False)
    assert out.returncode == 1 and "no account or user named 'nobody'" in out.stderr
    out = system.ctl("topup", "nobody", "--", "-5", check=False)
    assert out.returncode == 1 and "zero or more" in out.stderr
    out = system.ctl("refund", str(uuid.uuid4()), "--reason", "x", check=False)
    assert out.returncode == 1 and "was not charged" in out.stderr
    out = system.ctl("account", "add", "x", "--charge-rate", "0", check=False)
    assert out.returncode != 0


async def tamper_as_superuser(database_url: str, sql: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def test_verify_exits_1_and_names_a_balance_changed_behind_the_ledger(system):
    system.ctl("user", "add", "eve", "--balance", "5.00")
    verify(system)
    # Behind the ledger's back: the database refuses a balance changed without a posting,
    # so only a superuser turning its triggers off can do this. `verify` still finds it.
    tamper = (
        "SET session_replication_role = replica; "
        "UPDATE ledger.accounts SET balance = balance + {} WHERE id = 'personal:eve'"
    )
    await tamper_as_superuser(system.database_url, tamper.format("1.00"))
    try:
        out = system.ctl("ledger", "verify", check=False)
        assert out.returncode == 1
        assert (
            "PROBLEM: account personal:eve has balance 6.00 but its entries sum to 5.00"
            in out.stdout
        )
        assert out.stdout.splitlines()[-1] == "ledger has problems"
    finally:
        await tamper_as_superuser(system.database_url, tamper.format("-1.00"))
    verify(system)


async def test_user_show_lists_a_pending_hold(system):
    system.ctl("user", "add", "hal", "--balance", "5.00")
    # A job priced and authorised but not printed yet: published as pricing would, for a
    # job that no printer will release, so its hold stays pending.
    job = JobPriced(
        job_id=uuid.uuid4(),
        user="hal",
        printer="lab-9",
        document_name="thesis.pdf",
        sides=3,
        copies=1,
        cost=D("0.30"),
    )
    conn = await aio_pika.connect(system.amqp_url)
    async with conn:
        ch = await conn.channel(publisher_confirms=True)
        ex = await ch.get_exchange(EVENTS)
        await ex.publish(command(job), routing_key=job.message_type, mandatory=True)

    async def held():
        return await asyncio.to_thread(lambda: system.user_json("hal")["holds"])

    assert await eventually(held)
    out = system.ctl("user", "show", "hal").stdout.splitlines()
    assert out[0] == "hal (restricted): balance 5.00, held 0.30, available 4.70"
    assert f"  held 0.30 for job {job.job_id} (thesis.pdf on lab-9)" in out


async def test_statement_since_a_time_and_cut_short_by_its_limit(system):
    system.ctl("user", "add", "sid", "--balance", "5.00")
    # --since takes whole seconds: start from the next one, after the starting balance.
    since = datetime.now(UTC).replace(microsecond=0, tzinfo=None) + timedelta(seconds=1)
    await asyncio.sleep((since - datetime.now(UTC).replace(tzinfo=None)).total_seconds() + 0.1)
    system.ctl("topup", "sid", "1.00", "--reason", "cash at the desk")
    system.ctl("topup", "sid", "0.50", "--reason", "more cash")
    out = system.ctl("statement", "sid", "--since", since.strftime("%Y-%m-%dT%H:%M:%S"))
    lines = out.stdout.splitlines()
    assert lines[0] == "personal:sid: opening 5.00"
    assert [line.split()[2:5] for line in lines[1:3]] == [
        ["top-up", "1.00", "6.00"],
        ["top-up", "0.50", "6.50"],
    ]
    assert lines[3:] == ["closing 6.50"] and out.stderr == ""
    cut = system.ctl("statement", "sid", "--limit", "2")
    assert "statement cut short: only the first 2 lines are shown" in cut.stderr
    assert cut.stdout.splitlines()[-2:] == [
        "... more lines not shown (first 2 only)",
        "closing 6.50",
    ]


async def test_the_ledger_takes_its_job_events_up_to_a_batch_at_a_time(system, vhosts):
    """Its events queue's consumer may hold 64 deliveries unacknowledged (the batch size,
    `Subscriptions(batch_size=64)`); its commands queue keeps the prefetch of 32."""

    def prefetch(queue: str) -> list[int]:
        details = vhosts.queue(system.vhost, queue).get("consumer_details") or []
        return [c.get("prefetch_count") for c in details]

    async def both() -> bool:
        return bool(await asyncio.to_thread(prefetch, "account-ledger.events")) and bool(
            await asyncio.to_thread(prefetch, "account-ledger.commands")
        )

    assert await eventually(both)
    assert prefetch("account-ledger.events") == [64]
    assert prefetch("account-ledger.commands") == [32]
