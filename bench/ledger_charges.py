"""Ledger charges per second, across many accounts and on one hot shared account.

Runs the ledger's own handlers against a real PostgreSQL, as the service runs them: one
transaction to authorise a job (lock the paying account, check funds, write the hold and
the outbox row), one to post its charge when it has printed (lock both accounts in id
order, write a balanced transaction, mark the hold posted). Each "charge" below is both.

Scenarios, each at several levels of concurrency (transactions in flight at once):
- many: every job paid by a different personal account (no two jobs share a row lock);
- hot:  every job paid by one shared account (all of them queue on its row lock).

    .venv/bin/python bench/ledger_charges.py [--jobs 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import structlog

from platen.account_ledger.handlers import accounts, jobs, money, users
from platen.account_ledger.store import verify
from platen.db import apply_migrations, create_pool, load_migrations
from platen.events.accounts import AddAccount, AddUser, GrantAccess, SetUser, TopUp
from platen.events.base import Envelope
from platen.events.jobs import JobPriced, JobPrinted
from platen.messaging.handling import HandlerContext
from platen.messaging.service import MESSAGING_MIGRATIONS
from platen.testing.infra import provide
from platen.testing.isolation import create_database

ROOT = Path(__file__).resolve().parents[1]
MIGRATIONS = ROOT / "services/account-ledger/src/platen/account_ledger/migrations"
LOG = structlog.get_logger()


async def run(pool, handler, message):
    async with pool.acquire() as conn, conn.transaction():
        ctx = HandlerContext(conn, Envelope(message.message_type, 1, "bench"), "bench", None, LOG)
        return await handler(ctx, message)


async def charge(pool, login: str) -> None:
    job = JobPriced(
        job_id=uuid.uuid4(),
        user=login,
        printer="p",
        document_name="d",
        pages=1,
        copies=1,
        cost=Decimal("0.10"),
    )
    await run(pool, jobs.on_job_priced, job)
    await run(
        pool,
        jobs.on_job_printed,
        JobPrinted(
            job_id=job.job_id,
            user=login,
            printer="p",
            document_name="d",
            pages=1,
            copies=1,
            printed_at=datetime.now(UTC),
        ),
    )


async def measure(pool, logins: list[str], concurrency: int) -> float:
    queue = list(logins)

    async def worker():
        while queue:
            await charge(pool, queue.pop())

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return len(logins) / (time.perf_counter() - start)


async def main(n: int) -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    with provide() as infra:
        _, dsn = await create_database(infra.database_url)
        pool = await create_pool(dsn, "ledger", min_size=4, max_size=40)
        async with pool.acquire() as conn:
            await apply_migrations(
                conn,
                "ledger",
                load_migrations("messaging", MESSAGING_MIGRATIONS)
                + load_migrations("account-ledger", MIGRATIONS),
            )
        many = [f"m{i}" for i in range(n)]
        hot = [f"h{i}" for i in range(200)]
        for login in many:
            await run(pool, users.on_add_user, AddUser(login=login, initial_balance=Decimal(1000)))
        await run(pool, accounts.on_add_account, AddAccount(name="hot"))
        await run(pool, accounts.on_grant, GrantAccess(account="hot", groups=["g"]))
        await run(pool, money.on_topup, TopUp(key="k", account="hot", amount=Decimal(100000)))
        for login in hot:
            await run(pool, users.on_add_user, AddUser(login=login, groups=["g"]))
            await run(pool, users.on_set_user, SetUser(login=login, default_account="hot"))
        print(f"infrastructure: {infra.source}; {n} jobs per run; charge = authorise + post")
        for concurrency in (1, 8, 32):
            rate_many = await measure(pool, many, concurrency)
            rate_hot = await measure(pool, [hot[i % len(hot)] for i in range(n)], concurrency)
            print(
                f"concurrency {concurrency:>2}: many accounts {rate_many:7.0f} charges/s; "
                f"one hot shared account {rate_hot:7.0f} charges/s"
            )
        async with pool.acquire() as conn:
            problems = await verify(conn)
        print(f"ledger verify: {problems or 'OK'}")
        await pool.close()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--jobs", type=int, default=1000)
    asyncio.run(main(p.parse_args().jobs))
