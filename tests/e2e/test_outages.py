"""Broker and database interruptions while jobs are in flight: nothing lost, nothing doubled.

A broker restart is, for a client, every connection dropped at once; a database restart is
every server connection terminated. Both are done here to the test's own vhost and database,
so other tests are untouched.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

from platen.testing.documents import make_pdf
from tests.e2e.helpers import (
    EventRecorder,
    eventually,
    ledger_problems,
    query,
    submit_jobs,
    terminate_database_connections,
)


async def assert_all_charged_once(system, ids, events, price=Decimal("0.30"), start=Decimal(100)):
    await events.wait_for("job.charged", len(ids), timeout=180)
    await asyncio.sleep(2)
    charged = [m.correlation_id for m in events.of_type("job.charged")]
    assert sorted(set(charged)) == sorted(str(i) for i in ids)
    rows = await query(
        system.database_url,
        "SELECT job_id, count(*) AS n FROM ledger.transactions "
        "WHERE kind = 'charge' GROUP BY job_id",
    )
    assert len(rows) == len(ids) and all(r["n"] == 1 for r in rows)
    assert Decimal(system.user_json("alice")["balance"]) == start - len(ids) * price
    assert await ledger_problems(system.database_url) == []


async def charged_jobs(system) -> dict[str, int]:
    rows = await query(
        system.database_url,
        "SELECT job_id, count(*) AS n FROM ledger.transactions "
        "WHERE kind = 'charge' GROUP BY job_id",
    )
    return {str(r["job_id"]): r["n"] for r in rows}


async def test_broker_connections_dropped_mid_flight(system, vhosts, vhost):
    system.ctl("printer", "add", "lab-1", "--price-per-page", "0.10")
    system.ctl("user", "add", "alice", "--balance", "100.00")
    ids = await submit_jobs(system.amqp_url, "alice", "lab-1", make_pdf(3), 30)
    await eventually(lambda: charged_jobs(system), timeout=60)  # the first charges are in
    # Each service has a consumer and a publisher connection. The management API lists
    # connections with a delay, so keep cutting until all eight have been cut once.
    closed = 0
    for _ in range(30):
        closed += vhosts.close_connections(vhost[0])
        if closed >= 8:
            break
        await asyncio.sleep(0.5)
    assert closed >= 8
    everything = {str(i) for i in ids}

    async def all_charged():
        return set(await charged_jobs(system)) == everything

    assert await eventually(all_charged, timeout=180)
    await asyncio.sleep(2)
    charged = await charged_jobs(system)
    assert set(charged) == everything and set(charged.values()) == {1}
    assert Decimal(system.user_json("alice")["balance"]) == Decimal(100) - 30 * Decimal("0.30")
    assert await ledger_problems(system.database_url) == []
    # The services are all still there and answering.
    system.wait_ready()


async def test_database_connections_terminated_mid_flight(system):
    system.ctl("printer", "add", "lab-1", "--price-per-page", "0.10")
    system.ctl("user", "add", "alice", "--balance", "100.00")
    async with EventRecorder(system.amqp_url) as events:
        ids = await submit_jobs(system.amqp_url, "alice", "lab-1", make_pdf(3), 30)
        await events.wait_for("job.captured", 3, timeout=60)
        killed = await terminate_database_connections(system.database_url, rounds=3)
        assert killed >= 4
        await assert_all_charged_once(system, ids, events)
