"""The broker stopped, the broker frozen, the database stopped, while jobs are in flight:
afterwards every committed event is delivered, every job charged once, the ledger sound and
no message dead-lettered (issue 12, "Done when" 1 and 2, shortened; bench/outage.py runs
them at full length).

These take the servers down, so they run on a broker and database of their own
(platen.testing.outages), never the session's, which other tests on the worker share. The
relay retries every 0.2 s at most here (PLATEN_OUTBOX_MAX_BACKOFF_SECONDS), so a 30-second
outage makes more failed publishes than the 50 after which a row used to be abandoned.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from platen.job_capture.domain import EXPIRED
from platen.messaging.outbox import MAX_ATTEMPTS
from platen.testing.documents import make_pdf
from platen.testing.outages import PrivateStack, private_stack
from tests.conftest import System
from tests.e2e.helpers import (
    eventually,
    http_get,
    ledger_problems,
    metrics_addresses,
    query,
    scrape,
    submit_jobs,
)

# Each test waits out an outage and the drain after it, and the first also starts the
# private stack: more than the suite's 300 s a test on a loaded machine.
pytestmark = pytest.mark.timeout(900)

OUTAGE_SECONDS = 30
JOBS = 80
PRICE = Decimal("0.30")  # 3 pages at 0.10
RELAY_FAILED = "outbox relay failed, will retry"
SCHEMAS = ("job_capture", "pricing", "ledger", "notification")


@pytest.fixture(scope="module")
def stack() -> Iterator[PrivateStack]:
    with private_stack() as s:
        yield s


@pytest.fixture
def outage_system(stack: PrivateStack, tmp_path: Path, forkserver) -> Iterator[System]:
    """The four services on the private broker and database, as `system` on the shared."""
    platen = stack.platen(
        tmp_path / "logs",
        extra_env={"PLATEN_OUTBOX_MAX_BACKOFF_SECONDS": "0.2"},
        launcher=forkserver.popen,
        run=forkserver.run,
    )
    system = System(
        platen.services, tmp_path, platen.ids, platen.identities, platen.vhost, forkserver
    )
    system.platen = platen  # type: ignore[attr-defined]
    try:
        system.wait_ready()
        yield system
    finally:
        platen.services.stop_all()


async def charged_jobs(database_url: str) -> dict[str, int]:
    rows = await query(
        database_url,
        "SELECT job_id, count(*) AS n FROM ledger.transactions "
        "WHERE kind = 'charge' GROUP BY job_id",
    )
    return {str(r["job_id"]): r["n"] for r in rows}


async def outbox_rows(database_url: str) -> int:
    """Committed events not yet published, in all four services."""
    union = " UNION ALL ".join(f"SELECT count(*) AS n FROM {s}.outbox" for s in SCHEMAS)
    rows = await query(database_url, f"SELECT sum(n)::int AS n FROM ({union}) t")
    return rows[0]["n"]


def relay_failures(system: System) -> dict[str, int]:
    """How many times each service's relay failed to publish its waiting rows."""
    return {n: system.services.log(n).count(RELAY_FAILED) for n in system.services.procs}


def dead_letters(system: System) -> dict[str, list]:
    listed = json.loads(system.ctl("dlq", "list", "--json").stdout)
    return {service: letters for service, letters in listed.items() if letters}


async def jobs_in_flight(system: System) -> set[str]:
    """Submit JOBS jobs and return once some are charged and some are not yet."""
    system.ctl("printer", "add", "lab-1", "--price-per-page", "0.10")
    system.ctl("user", "add", "alice", "--balance", "100.00")
    ids = await submit_jobs(system.amqp_url, "alice", "lab-1", make_pdf(3), JOBS)
    assert await eventually(lambda: charged_jobs(system.database_url), timeout=120)
    return {str(i) for i in ids}


async def during(seconds: float, database_url: str | None) -> int:
    """Wait out the outage; the most committed-but-unpublished rows seen meanwhile (read
    with the database up, i.e. not when it is the database that is down)."""
    peak = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if database_url is not None:
            peak = max(peak, await outbox_rows(database_url))
        await asyncio.sleep(1)
    return peak


async def assert_recovered(system: System, everything: set[str]) -> None:
    """Every job charged exactly once, every committed event published, nothing
    dead-lettered, and the ledger sound."""

    async def all_charged() -> bool:
        return set(await charged_jobs(system.database_url)) == everything

    assert await eventually(all_charged, timeout=180), "not every job was charged"
    await asyncio.sleep(2)  # a second charge, were there one, would be in by now
    charged = await charged_jobs(system.database_url)
    assert set(charged) == everything and set(charged.values()) == {1}
    assert await eventually(lambda: _outbox_empty(system.database_url), timeout=60)
    balance = Decimal(system.user_json("alice")["balance"])
    assert balance == Decimal(100) - len(everything) * PRICE
    assert await ledger_problems(system.database_url) == []
    assert system.ctl("ledger", "verify").returncode == 0
    assert dead_letters(system) == {}
    assert system.platen.dead_letters() == 0
    # Every service answers again, and says its outbox is empty.
    status = json.loads(system.ctl("status", "--json", "--timeout", "60").stdout)
    assert set(status) == set(system.services.procs)
    assert {(s["outbox_waiting"], s["outbox_refused"]) for s in status.values()} == {(0, 0)}


async def _outbox_empty(database_url: str) -> bool:
    return await outbox_rows(database_url) == 0


async def waiting_for_their_user(system: System, n: int, deadline: int) -> set[str]:
    """`n` jobs of a user who must confirm each job and never does: job-capture cancels
    them at their deadline by itself, with no message to prompt it, so events are committed
    while the broker is away however the outage falls."""
    system.ctl("user", "add", "bob", "--balance", "100.00")
    system.ctl("user", "set", "bob", "--selection", "confirm")
    ids = await submit_jobs(system.amqp_url, "bob", "lab-1", make_pdf(3), n, deadline)
    wanted = [str(i) for i in ids]

    async def all_priced() -> bool:
        rows = await query(
            system.database_url,
            "SELECT count(*) AS n FROM job_capture.jobs WHERE state = 'priced' "
            "AND job_id::text = ANY($1::text[])",
            wanted,
        )
        return rows[0]["n"] == n

    assert await eventually(all_priced, timeout=120)
    return set(wanted)


async def test_the_broker_stopped_past_the_old_attempt_limit_loses_nothing(
    stack: PrivateStack, outage_system: System
):
    everything = await jobs_in_flight(outage_system)
    # Cancelled at their deadline, 25 s from their capture: some seconds into the outage
    # (stopping the broker takes a few), and long enough before its end for more than 50
    # failed publishes.
    unanswered = await waiting_for_their_user(outage_system, 3, deadline=25)
    stack.stop_broker()
    peak = await during(OUTAGE_SECONDS + 10, outage_system.database_url)
    failures = relay_failures(outage_system)
    stack.start_broker()

    # Events were committed while the broker was away (the cancellations at least), and
    # job-capture's relay tried to publish them more often than a row used to be allowed:
    # each failure is one try of every row in the batch.
    assert peak >= len(unanswered)
    assert failures["job-capture"] > MAX_ATTEMPTS, failures
    await assert_recovered(outage_system, everything)
    rows = await query(
        outage_system.database_url,
        "SELECT state, reason FROM job_capture.jobs WHERE job_id::text = ANY($1::text[])",
        list(unanswered),
    )
    assert {(r["state"], r["reason"]) for r in rows} == {("cancelled", EXPIRED)}
    # The cancellations reached the ledger: nothing is held or charged for bob.
    bob = outage_system.user_json("bob")
    assert Decimal(bob["balance"]) == Decimal(100) and Decimal(bob["held"]) == 0


async def test_the_broker_frozen_loses_nothing(stack: PrivateStack, outage_system: System):
    everything = await jobs_in_flight(outage_system)
    unanswered = await waiting_for_their_user(outage_system, 3, deadline=15)
    stack.freeze_broker()
    try:
        peak = await during(OUTAGE_SECONDS, outage_system.database_url)
    finally:
        stack.thaw_broker()
    assert peak >= len(unanswered)
    await assert_recovered(outage_system, everything)
    bob = outage_system.user_json("bob")
    assert Decimal(bob["balance"]) == Decimal(100) and Decimal(bob["held"]) == 0


async def test_the_database_stopped_dead_letters_nothing(
    stack: PrivateStack, outage_system: System
):
    # Asked while the services are idle: a status query waiting behind a busy queue
    # expires there (and is dead-lettered).
    addresses = metrics_addresses(outage_system)
    everything = await jobs_in_flight(outage_system)
    stack.stop_database()
    try:
        # Jobs submitted meanwhile reach job-capture, which must hold them: the broker is
        # up, only the database is away.
        more = await submit_jobs(outage_system.amqp_url, "alice", "lab-1", make_pdf(3), 10)
        # Every service says it is not ready, and why; its metrics are still served, with
        # the deliveries it holds.
        for name, address in addresses.items():
            status, body = await http_get(f"{address}/health/ready")
            assert status == 503, (name, body)
            assert "database" in json.loads(body)["failed"], (name, body)
            assert (await http_get(f"{address}/health/live"))[0] == 200
        held = ("platen_messages_held", frozenset({("queue", "job-capture.commands")}))

        async def holding_jobs() -> bool:
            return (await scrape(addresses["job-capture"])).get(held, 0) > 0

        assert await eventually(holding_jobs, timeout=OUTAGE_SECONDS)
        await during(OUTAGE_SECONDS, None)
    finally:
        stack.start_database()
    holding = "database unavailable; holding the message"
    assert holding in outage_system.services.log("job-capture")

    async def all_ready() -> bool:
        answers = [await http_get(f"{a}/health/ready") for a in addresses.values()]
        return all(status == 200 for status, _ in answers)

    assert await eventually(all_ready, timeout=120)
    await assert_recovered(outage_system, everything | {str(i) for i in more})
