"""The point of charging, through a real cupsd: a job released to the printer is charged
unless Platen knows the printer received none of it.

The `slow` queue's printer takes as long as the test says (see SLOW_BACKEND), which is
how a `cancel` lands while the printer is being sent a job, and how a print outlasts
job-capture's release timeout (set to a few seconds here)."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal as D

import pytest

from platen.job_capture.backend_reports import INTERRUPTED
from platen.job_capture.expiry import UNREPORTED
from tests.cups.test_cups_capture import CANCELED, COMPLETED, document, job_state
from tests.e2e.helpers import EventRecorder, eventually, ledger_problems, query

# Released jobs nobody hears about for 3 s are unconfirmed, looked for every 0.3 s.
SHORT_RELEASE = pytest.mark.service_env(
    PLATEN_RELEASE_TIMEOUT_SECONDS="3", PLATEN_EXPIRY_INTERVAL_SECONDS="0.3"
)


def heartbeat_every(cups, seconds: float) -> None:
    config = cups.cups.backend_config
    text = config.read_text().replace("[platen]\n", f"[platen]\nheartbeat = {seconds}\n")
    config.write_text(text)


async def started(cups, job: int, timeout: float = 60) -> None:
    async def check():
        return cups.slow.started(job)

    assert await eventually(check, timeout=timeout, interval=0.2), "the printer never started"


async def jobs(system) -> list:
    return await query(system.database_url, "SELECT job_id, state, reason FROM job_capture.jobs")


async def balance(system, login: str) -> tuple[D, D]:
    user = await asyncio.to_thread(system.user_json, login)
    return D(user["balance"]), D(user["held"])


async def ledger_is_sound(system) -> None:
    assert await ledger_problems(system.database_url) == []
    out = await asyncio.to_thread(system.ctl, "ledger", "verify")
    assert "ledger OK" in out.stdout


def setup(system, *, balance: str = "5.00", selection: str | None = None) -> None:
    system.ctl("printer", "add", "slow", "--price-per-page", "0.10")
    system.ctl("user", "add", "alice", "--balance", balance)
    if selection:
        system.ctl("user", "set", "alice", "--selection", selection)


async def test_cancel_while_the_printer_is_sent_the_job_charges_it(system, cups):
    setup(system)
    cups.slow.set(delay=60)
    async with EventRecorder(system.amqp_url) as events:
        job = cups.cups.lp("slow", document(system, 3), "alice")
        await started(cups, job)
        cups.cups.run("cancel", f"slow-{job}")
        await job_state(cups, "slow", job, {CANCELED})
        [charged] = await events.wait_for("job.charged", 1, timeout=30)
        [printed] = events.of_type("job.printed")
        await asyncio.sleep(1)
        assert len(events.of_type("job.charged")) == 1
        assert events.of_type("job.cancelled") == events.of_type("job.failed") == []
    assert not cups.slow.printed(job)  # the printer was stopped part way
    [row] = await jobs(system)
    assert (row["state"], row["reason"]) == ("printed", INTERRUPTED)
    assert str(row["job_id"]) == printed.correlation_id == charged.correlation_id
    assert await balance(system, "alice") == (D("4.70"), D("0.00"))
    await ledger_is_sound(system)


async def test_cancel_while_waiting_for_platen_charges_nothing(system, cups):
    setup(system, selection="confirm")
    async with EventRecorder(system.amqp_url) as events:
        job = cups.cups.lp("slow", document(system, 3), "alice")
        await events.wait_for("job.input_required", 1, timeout=60)
        cups.cups.run("cancel", f"slow-{job}")
        await job_state(cups, "slow", job, {CANCELED})
        [cancelled] = await events.wait_for("job.cancelled", 1, timeout=30)
        await asyncio.sleep(1)
        assert events.of_type("job.charged") == [] == events.of_type("job.authorized")
    assert "cancelled in CUPS" in json.loads(cancelled.body)["reason"]
    assert not cups.slow.started(job)
    [row] = await jobs(system)
    assert row["state"] == "cancelled"
    assert await balance(system, "alice") == (D("5.00"), D("0.00"))

    # The question alice was asked is closed: answering it now changes nothing. The ledger
    # closes it when it takes job-capture's `job.cancelled`, after the event was seen here.
    async def questions() -> list[str]:
        rows = await query(system.database_url, "SELECT state FROM ledger.pending_inputs")
        return [r["state"] for r in rows]

    async def closed() -> bool:
        return await questions() == ["cancelled"]

    assert await eventually(closed, timeout=30), await questions()
    await ledger_is_sound(system)


@SHORT_RELEASE
async def test_a_printer_slower_than_the_release_timeout_is_charged_once_when_it_finishes(
    system, cups
):
    setup(system)
    heartbeat_every(cups, 0.5)
    cups.slow.set(delay=8)  # well past the 3 s release timeout
    async with EventRecorder(system.amqp_url) as events:
        job = cups.cups.lp("slow", document(system, 3), "alice")
        await started(cups, job)
        await asyncio.sleep(5)
        # Past the timeout, still printing: kept alive, nothing charged yet.
        assert [r["state"] for r in await jobs(system)] == ["released"]
        assert events.of_type("job.charged") == []
        await job_state(cups, "slow", job, {COMPLETED}, timeout=30)
        await events.wait_for("job.charged", 1, timeout=30)
        await asyncio.sleep(1)
        assert len(events.of_type("job.charged")) == 1
        assert events.of_type("job.unconfirmed") == []
    assert cups.slow.printed(job)
    [row] = await jobs(system)
    assert (row["state"], row["reason"]) == ("printed", None)
    assert await balance(system, "alice") == (D("4.70"), D("0.00"))
    await ledger_is_sound(system)


@SHORT_RELEASE
async def test_a_late_outcome_after_the_release_timeout_is_charged_once(system, cups):
    setup(system)
    heartbeat_every(cups, 3600)  # no heartbeat: the print server seems lost
    cups.slow.set(delay=8)
    async with EventRecorder(system.amqp_url) as events:
        job = cups.cups.lp("slow", document(system, 3), "alice")
        await started(cups, job)
        # Unheard of past the timeout: its fate is unknown, and it is charged.
        [unconfirmed] = await events.wait_for("job.unconfirmed", 1, timeout=30)
        await events.wait_for("job.charged", 1, timeout=30)
        assert not cups.slow.printed(job)
        [row] = await jobs(system)
        assert (row["state"], row["reason"]) == ("unconfirmed", UNREPORTED)
        assert await balance(system, "alice") == (D("4.70"), D("0.00"))
        # Then the printer finishes and the outcome arrives, late: charged, and only once.
        await job_state(cups, "slow", job, {COMPLETED}, timeout=30)
        [printed] = await events.wait_for("job.printed", 1, timeout=30)
        await asyncio.sleep(1.5)
        assert len(events.of_type("job.charged")) == 1
    assert printed.correlation_id == unconfirmed.correlation_id
    [row] = await jobs(system)
    assert row["state"] == "printed"
    assert await balance(system, "alice") == (D("4.70"), D("0.00"))
    await ledger_is_sound(system)


@SHORT_RELEASE
async def test_a_late_failure_leaves_the_job_charged_for_an_admin_to_refund(system, cups):
    setup(system)
    heartbeat_every(cups, 3600)
    cups.slow.set(delay=8, status=1)  # the printer fails, after the release timeout
    async with EventRecorder(system.amqp_url) as events:
        job = cups.cups.lp("slow", document(system, 3), "alice")
        await started(cups, job)
        await events.wait_for("job.charged", 1, timeout=30)

        async def reported():
            [row] = await jobs(system)
            return "after the release timeout" in (row["reason"] or "")

        assert await eventually(reported, timeout=30), await jobs(system)
        await asyncio.sleep(1)
        assert events.of_type("job.failed") == []
    [row] = await jobs(system)
    assert row["state"] == "unconfirmed" and "status 1" in row["reason"]
    assert await balance(system, "alice") == (D("4.70"), D("0.00"))
    # The administrator lists the unconfirmed jobs and refunds this one.
    listed = json.loads(system.ctl("jobs", "--state", "unconfirmed", "--json").stdout)
    assert [(j["job_id"], j["state"]) for j in listed] == [(str(row["job_id"]), "unconfirmed")]
    assert json.loads(system.ctl("jobs", "--state", "printed", "--json").stdout) == []
    system.ctl("refund", str(row["job_id"]), "--reason", "the printer failed")
    assert await balance(system, "alice") == (D("5.00"), D("0.00"))
    await ledger_is_sound(system)


def test_jobs_state_refuses_a_state_that_does_not_exist(system):
    out = system.ctl("jobs", "--state", "lost", check=False)
    assert out.returncode != 0 and "unconfirmed" in out.stderr
