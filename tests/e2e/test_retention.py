"""Storage stays flat: with no retention, every table a service prunes comes back to its
size before a run of jobs once the jobs are done, and the ledger's journal keeps them all.
(bench/retention.py runs 10,000 jobs' rows through the same pruning.)"""

from __future__ import annotations

import pytest

from platen.events.desktop import JobPrompt
from platen.testing.documents import make_pdf
from tests.e2e.clientproc import desktop_url
from tests.e2e.helpers import eventually, ledger_problems, query, submit_jobs
from tests.e2e.test_rogue_clients import answer

PRUNED = {
    "job_capture": ("jobs", "spool", "cancelled_before_capture", "inbox", "outbox"),
    "pricing": ("inbox", "outbox"),
    "ledger": ("pending_inputs", "closed_jobs", "inbox", "outbox"),
    "notification": ("deliveries", "answers", "prompts", "inbox", "outbox"),
}


async def sizes(system) -> dict[str, int]:
    sql = " UNION ALL ".join(
        f"SELECT '{schema}.{table}' AS t, count(*) AS n FROM {schema}.{table}"
        for schema, tables in PRUNED.items()
        for table in tables
    )
    return {r["t"]: r["n"] for r in await query(system.database_url, sql)}


@pytest.mark.service_env(
    PLATEN_HISTORY_RETENTION_DAYS="0",
    PLATEN_INBOX_RETENTION_DAYS="0",
    PLATEN_PRUNE_INTERVAL_SECONDS="1",
)
async def test_with_no_retention_the_pruned_tables_come_back_to_their_size(system, desktops):
    system.ctl("printer", "add", "lab-1", "--price-per-page", "0.10")
    system.ctl("user", "add", "alice", "--balance", "50.00")
    system.ctl("user", "add", "carol", "--balance", "50.00")
    system.ctl("user", "set", "carol", "--selection", "confirm")
    carol = desktop_url(desktops("carol"))
    before = await sizes(system)

    straight = await submit_jobs(system.amqp_url, "alice", "lab-1", make_pdf(1), 8)
    asked = await submit_jobs(system.amqp_url, "carol", "lab-1", make_pdf(1), 2)
    for job in asked:  # carol confirms each: a prompt, an answer, deliveries
        await system.desktop_messages(
            "carol", until=lambda m, job=job: isinstance(m, JobPrompt) and m.job_id == job
        )
        await answer(carol, "carol", job, action="print")

    async def charged() -> bool:
        rows = await query(
            system.database_url,
            "SELECT count(*) AS n FROM ledger.transactions WHERE kind = 'charge'",
        )
        return rows[0]["n"] == len(straight) + len(asked)

    assert await eventually(charged, timeout=90)

    async def back_to_size() -> dict[str, int]:
        now = await sizes(system)
        return {t: n for t, n in now.items() if n > before[t]}

    async def flat() -> bool:
        return not await back_to_size()

    await eventually(flat, timeout=60)
    assert await back_to_size() == {}

    # Ten jobs were in job_capture.jobs and are gone: pruned, and the log says so (once the
    # pass that deleted them has ended, a moment after the rows went).
    async def logged() -> bool:
        lines = system.services.log("job-capture").splitlines()
        return any('"pruned"' in line and '"jobs": ' in line for line in lines)

    assert await eventually(logged)
    # The journal is never pruned: every charge is still there and the ledger checks out.
    assert await charged()
    assert await ledger_problems(system.database_url) == []
