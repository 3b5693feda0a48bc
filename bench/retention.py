"""Storage under steady load: 10,000 jobs' rows, pruned with no retention as they go.

Each round leaves in each service's tables what `--per-round` jobs leave there (through
the services' own stores and, for the ledger, its handlers), then runs one pruning pass
per service as the service's background task does (`platen.operations.retention.prune`,
retention 0). Printed per round: the rows of every pruned table after the load and after
the pass, the pass's time, and the tables' total size on disk (relation + indexes +
TOAST). Flat storage means the sizes after each pass stop growing once autovacuum has
space to reuse; the ledger's journal (transactions, entries, holds) grows, as it must.

What one job leaves: job-capture a job row and its spooled document (until it ends);
the ledger a hold, a charge, and for one job in five a question answered by its user and a
wrong PIN; notification three deliveries, and for the asked jobs a prompt and an answer;
ten inbox rows spread over the four services (one per message a job causes).

    .venv/bin/python bench/retention.py [--jobs 10000] [--per-round 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import asyncpg
import structlog

from platen.account_ledger.handlers import jobs as ledger_jobs
from platen.account_ledger.handlers import users as ledger_users
from platen.account_ledger.store import Store as LedgerStore
from platen.db import apply_migrations, create_pool, load_migrations
from platen.events.accounts import AddUser, AnswerJob, SetUser
from platen.events.jobs import JobPriced, JobPrinted, SubmitJob
from platen.job_capture.analysis import Analysis
from platen.job_capture.domain import Job
from platen.job_capture.store import Store as CaptureStore
from platen.messaging.handling import apply_in_transaction
from platen.messaging.service import MESSAGING_MIGRATIONS
from platen.notification.domain import Answer, Prompt
from platen.notification.store import Store as NotificationStore
from platen.operations import retention
from platen.pricing.store import Store as PricingStore
from platen.testing.infra import provide
from platen.testing.isolation import create_database

ROOT = Path(__file__).resolve().parents[1]
SERVICES = {  # schema: (service, migrations folder, store)
    "job_capture": ("job-capture", "services/job-capture/src/platen/job_capture", CaptureStore),
    "pricing": ("pricing", "services/pricing/src/platen/pricing", PricingStore),
    "ledger": ("account-ledger", "services/account-ledger/src/platen/account_ledger", LedgerStore),
    "notification": (
        "notification",
        "services/notification/src/platen/notification",
        NotificationStore,
    ),
}
PRUNED = {
    "job_capture": ["jobs", "spool", "inbox"],
    "pricing": ["inbox"],
    "ledger": ["pending_inputs", "closed_jobs", "pin_failures", "inbox"],
    "notification": ["deliveries", "prompts", "answers", "inbox"],
}
JOURNAL = ["ledger.transactions", "ledger.entries", "ledger.holds"]
INBOX_ROWS = {"job_capture": 4, "pricing": 1, "ledger": 3, "notification": 2}  # per job
DOCUMENT = b"%PDF-1.7\n" + b"0" * 20_000  # a small document's spool row
NOW = datetime.now(UTC)


def submitted(login: str) -> Job:
    cmd = SubmitJob(
        job_id=uuid.uuid4(),
        user=login,
        printer="lab",
        document_name="report.pdf",
        document=base64.b64encode(DOCUMENT),
    )
    analysis = Analysis(format="pdf", pages=2, color_pages=(), page_sizes=("A4", "A4"))
    return Job.capture(
        cmd, now=NOW, deadline_seconds=600, identity="api", print_server=None, analysis=analysis
    )


async def capture_rows(pool: asyncpg.Pool, job: Job) -> None:
    async with pool.acquire() as conn, conn.transaction():
        store = CaptureStore(conn)
        await store.add(job)
        await store.spool(job.job_id, DOCUMENT)
    async with pool.acquire() as conn, conn.transaction():
        job.price(Decimal("0.20"))
        job.release(NOW)  # a program's job prints on release: it has ended
        await CaptureStore(conn).move(job)


async def ledger_rows(pool: asyncpg.Pool, job: Job, asked: bool) -> None:
    def run(handler, message):
        return apply_in_transaction(pool, "bench", handler, message, store=LedgerStore)

    login = "asked" if asked else "auto"
    about = {"job_id": job.job_id, "user": login, "printer": "lab", "document_name": "r.pdf"}
    size = {"pages": 2, "copies": 1}
    await run(ledger_jobs.on_job_priced, JobPriced(**about, **size, cost=Decimal("0.20")))
    if asked:
        await run(ledger_jobs.on_answer, AnswerJob(job_id=job.job_id, user=login, action="print"))
        async with pool.acquire() as conn:
            await LedgerStore(conn).add_pin_failure(login, "shared:none", NOW - timedelta(hours=1))
    await run(ledger_jobs.on_job_printed, JobPrinted(**about, **size, printed_at=NOW))


async def notification_rows(pool: asyncpg.Pool, job: Job, asked: bool) -> None:
    async with pool.acquire() as conn, conn.transaction():
        store = NotificationStore(conn)
        for kind in ("job_printed", "balance", "balance"):
            await store.record_delivery(job.user, kind, job.job_id)
        if asked:
            prompt = Prompt(job.job_id, job.user, "report.pdf", NOW + timedelta(minutes=10))
            await store.add_prompt(prompt)
            prompt.close()
            await store.save_prompt(prompt)
            answer = Answer(f"cmd-{job.job_id}", job.job_id, job.user, "print")
            await store.add_answer(answer)
            answer.settle("authorized")
            await store.save_answer(answer)


async def inbox_rows(pools: dict[str, asyncpg.Pool], jobs: int) -> None:
    for schema, per_job in INBOX_ROWS.items():
        async with pools[schema].acquire() as conn:
            await conn.execute(
                "INSERT INTO inbox (consumer, message_id) "
                "SELECT 'bench', gen_random_uuid()::text FROM generate_series(1, $1)",
                jobs * per_job,
            )


async def one_job(pools: dict[str, asyncpg.Pool], n: int) -> None:
    asked = n % 5 == 0
    job = submitted("asked" if asked else "auto")
    await capture_rows(pools["job_capture"], job)
    await ledger_rows(pools["ledger"], job, asked)
    await notification_rows(pools["notification"], job, asked)


async def rows(conn: asyncpg.Connection) -> dict[str, int]:
    names = [f"{s}.{t}" for s, tables in PRUNED.items() for t in tables] + JOURNAL
    return {n: await conn.fetchval(f"SELECT count(*) FROM {n}") for n in names}


async def disk(conn: asyncpg.Connection) -> int:
    names = [f"{s}.{t}" for s, tables in PRUNED.items() for t in tables]
    return sum([await conn.fetchval("SELECT pg_total_relation_size($1)", n) for n in names])


async def main(total: int, per_round: int, concurrency: int) -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    with provide(durable=True) as infra:
        _, dsn = await create_database(infra.database_url)
        pools = {}
        for schema, (service, folder, _) in SERVICES.items():
            pools[schema] = await create_pool(dsn, schema, min_size=1, max_size=concurrency + 2)
            async with pools[schema].acquire() as conn:
                await apply_migrations(
                    conn,
                    schema,
                    load_migrations("messaging", MESSAGING_MIGRATIONS)
                    + load_migrations(service, ROOT / folder / "migrations"),
                )
        run = apply_in_transaction
        for login, selection in (("auto", "auto"), ("asked", "confirm")):
            add = AddUser(login=login, initial_balance=Decimal(100000), restricted=False)
            await run(pools["ledger"], "bench", ledger_users.on_add_user, add, store=LedgerStore)
            setting = SetUser(login=login, account_selection=selection)
            await run(
                pools["ledger"], "bench", ledger_users.on_set_user, setting, store=LedgerStore
            )
        admin = await asyncpg.connect(dsn)
        print(
            f"infrastructure: {infra.source}; {total} jobs in rounds of {per_round}, "
            f"{concurrency} at a time; pruning with retention 0 after each round"
        )
        print(
            f"{'round':>5} {'jobs':>6} {'pruned rows':>12} {'left':>5} {'prune s':>8} "
            f"{'pruned tables MiB':>18} {'journal rows':>13}"
        )
        done = 0
        while done < total:
            batch = min(per_round, total - done)
            queue = list(range(done, done + batch))

            async def worker(queue=queue):
                while queue:
                    await one_job(pools, queue.pop())

            await asyncio.gather(*(worker() for _ in range(concurrency)))
            await inbox_rows(pools, batch)
            done += batch
            loaded = await rows(admin)
            start = time.perf_counter()
            for schema, (_, _, store) in SERVICES.items():
                async with pools[schema].acquire() as conn:
                    await retention.prune(conn, store, inbox=timedelta(0), history=timedelta(0))
            took = time.perf_counter() - start
            after = await rows(admin)
            pruned = sum(loaded[n] - after[n] for n in loaded if n not in JOURNAL)
            left = {n: c for n, c in after.items() if c and n not in JOURNAL}
            journal = sum(after[n] for n in JOURNAL)
            print(
                f"{done // per_round:>5} {done:>6} {pruned:>12} {sum(left.values()):>5} "
                f"{took:>8.2f} {await disk(admin) / 2**20:>18.1f} {journal:>13}"
            )
        print(f"rows left in the pruned tables after the last pass: {left}")
        await admin.close()
        for pool in pools.values():
            await pool.close()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--jobs", type=int, default=10_000)
    p.add_argument("--per-round", type=int, default=1_000)
    p.add_argument("--concurrency", type=int, default=8)
    args = p.parse_args()
    asyncio.run(main(args.jobs, args.per_round, args.concurrency))
