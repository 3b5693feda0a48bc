"""Ledger charges per second, across many accounts and on one hot shared account.

Runs the ledger's own handlers against a real PostgreSQL, as the service runs them: one
transaction to authorise a job (lock the paying account, check funds, write the hold and
the outbox row), one to post its charge when it has printed (lock both accounts in id
order, write a balanced transaction, mark the hold posted). Each "charge" below is both.

Scenarios, each at several levels of concurrency (transactions in flight at once):
- many: every job paid by a different personal account. The posting also credits a
  revenue account, one of 16 chosen by a hash of the job id, so two postings share a row
  lock only when their jobs hash to the same revenue account;
- hot:  every job paid by one shared account (all of them queue on its row lock).

`--batch N` also runs every scenario with the charges in batches of up to N jobs, as the
ledger's batched events queue applies them (`platen.messaging.batching`): one transaction
authorises a batch of jobs, one posts them; "in flight" is then the number of batches in
flight at once. Both ways run in the same process and database, alternated for `--rounds`.

Each figure comes with the CPU milliseconds per charge, the benchmark's own process (the
ledger's Python) and the database backends serving it (from /proc), in all and each: on a
machine shared with other work, that moves far less than the rate does, and it says where
the time goes.

In batches, the hot scenario's figure also says how long a batch held the hot account's
row lock (from the answer to the statement that took it to the answer to its commit, as
the benchmark's process sees them), split into deciding the jobs (the handlers, until the
batch's writes), writing (`Store.flush`) and the outbox rows and commit; what share of the
run someone held it (the intervals of consecutive holders overlap by about a round trip, so
100 % or a little over means the lock is never free); and how long a batch waited for it.
With the lock held all the time, the rate is at most one batch per time held: that time
is what a change must shorten to go faster with several batches in flight.

`--compare` also runs both scenarios with every charge crediting one revenue account (the
design before migration 004, set here by patching `domain.REVENUE_SHARDS`), in the same
process and database, alternating the two designs for `--rounds` rounds.

`--compare REV` instead also runs the ledger of git revision REV (its `libs` and the
ledger's sources, unpacked to a temporary folder and put first on a child process's
PYTHONPATH) against the same database, in turns with this tree's, each way of batching and
each number in flight side by side in one run.

Before the rates, each design's statements per batch are counted (every statement the
benchmark's connection sends, BEGIN and COMMIT and the pool's reset of a released
connection included, counted by an asyncpg query logger on a one-connection pool, the
second time a batch is sent on it): each is a round trip to the database. So are the
events (outbox rows) the same batches leave: each is encoded, written, and published by
the relay.

    .venv/bin/python bench/ledger_charges.py [--jobs 1000] [--compare [REV]] [--batch 32]
        [--rounds 2] [--only hot|many]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import structlog

from platen.account_ledger import domain
from platen.account_ledger.handlers import accounts, jobs, money, users
from platen.account_ledger.store import Store, verify
from platen.db import apply_migrations, create_pool, load_migrations
from platen.events.accounts import AddAccount, AddUser, GrantAccess, SetUser, TopUp
from platen.events.jobs import JobPriced, JobPrinted
from platen.messaging.batching import apply_batch_in_transaction
from platen.messaging.handling import apply_in_transaction
from platen.messaging.service import MESSAGING_MIGRATIONS
from platen.testing.infra import provide
from platen.testing.isolation import create_database

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

from bench.revisions import unpack

ROOT = Path(__file__).resolve().parents[1]
MIGRATIONS = ROOT / "services/account-ledger/src/platen/account_ledger/migrations"


async def run(pool, handler, message):
    return await apply_in_transaction(pool, "bench", handler, message, store=Store)


def priced(login: str) -> JobPriced:
    return JobPriced(
        job_id=uuid.uuid4(),
        user=login,
        printer="p",
        document_name="d",
        sides=1,
        copies=1,
        cost=Decimal("0.10"),
    )


def printed(job: JobPriced) -> JobPrinted:
    return JobPrinted(
        job_id=job.job_id,
        user=job.user,
        printer="p",
        document_name="d",
        pages=1,
        copies=1,
        printed_at=datetime.now(UTC),
    )


async def charge(pool, login: str) -> None:
    job = priced(login)
    await run(pool, jobs.on_job_priced, job)
    await run(pool, jobs.on_job_printed, printed(job))


HOT = "shared:hot"
# The hot account's row lock as the batches saw it, for the run being measured: seconds
# held (from the lock statement's answer to the commit's) and waited for (the lock
# statement's round trip), by kind of batch.
held: dict[str, float] = {}


class ClockedStore(Store):
    """The ledger's store, noting when its transaction got the hot account's row lock."""

    got_hot: float | None = None

    async def lock_accounts(self, account_ids) -> None:
        account_ids = set(account_ids)
        asked = time.perf_counter()
        await super().lock_accounts(account_ids)
        if HOT in account_ids and self.got_hot is None:
            self.got_hot = time.perf_counter()
            held["wait"] = held.get("wait", 0.0) + self.got_hot - asked

    async def flush(self) -> None:
        # The batch's last flush is its writes, after every job was decided.
        self.flushing = time.perf_counter()
        await super().flush()
        self.flushed = time.perf_counter()


async def charge_batch(pool, logins: list[str]) -> None:
    """Authorise these jobs in one transaction, then post them in another."""
    work = [priced(login) for login in logins]
    for kind, handler, messages in (
        ("authorise", jobs.on_job_priced, work),
        ("post", jobs.on_job_printed, map(printed, work)),
    ):
        steps = [(handler, m) for m in messages]
        stores = []

        def store(conn, stores=stores):
            stores.append(ClockedStore(conn))
            return stores[-1]

        await apply_batch_in_transaction(pool, "bench", steps, store=store)
        if stores and stores[0].got_hot is not None:
            done, s = time.perf_counter(), stores[0]
            held[kind] = held.get(kind, 0.0) + done - s.got_hot
            for phase, took in (
                ("deciding", s.flushing - s.got_hot),
                ("writing", s.flushed - s.flushing),
                ("committing", done - s.flushed),
            ):
                held[phase] = held.get(phase, 0.0) + took
            held["batches"] = held.get("batches", 0) + (kind == "post")


async def measure(pool, logins: list[str], concurrency: int, batch: int = 1) -> float:
    queue = list(logins)

    async def worker():
        while queue:
            if batch == 1:
                await charge(pool, queue.pop())
                continue
            taken = [queue.pop() for _ in range(min(batch, len(queue)))]
            await charge_batch(pool, taken)

    server_before = await server_cpu(pool)
    client_before = time.process_time()
    held.clear()
    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    held["elapsed"] = elapsed
    client = time.process_time() - client_before
    server = await server_cpu(pool) - server_before
    return len(logins) / elapsed, 1000 * client / len(logins), 1000 * server / len(logins)


TICKS = os.sysconf("SC_CLK_TCK")


async def server_cpu(pool) -> float:
    """CPU seconds the database's backends of this benchmark have used so far (read from
    /proc: the database runs on this machine). With the benchmark's own CPU, a figure per
    charge that the other load on the machine moves far less than a rate."""
    async with pool.acquire() as conn:
        pids = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
        )
    return sum(map(ticks_of, (row["pid"] for row in pids))) / TICKS


def ticks_of(pid: int) -> int:
    """utime + stime of one process, in clock ticks (0: it has ended)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])


async def count_statements(dsn: str, size: int) -> tuple[int, int, int]:
    """Statements sent to authorise `size` jobs of as many users on the hot account and
    to post them (one batch of each, or one transaction each when `size` is 1), on a pool
    of one connection whose every statement an asyncpg query logger counts; and the
    outbox rows (events) both left."""
    pool = await create_pool(dsn, "ledger", min_size=1, max_size=1)
    sent = []
    async with pool.acquire() as conn:
        conn.add_query_logger(sent.append)
    # Twice, the first to warm the connection as a running service's is (asyncpg asks the
    # database about a statement's types the first time it sees it); the second counted.
    for _ in range(2):
        work = [priced(f"h{i}") for i in range(size)]
        counts = []
        events = -await pool.fetchval("SELECT count(*) FROM outbox")
        for handler, messages in ((jobs.on_job_priced, work), (jobs.on_job_printed, work)):
            if handler is jobs.on_job_printed:
                messages = [printed(job) for job in work]
            sent.clear()
            if size == 1:
                await run(pool, handler, messages[0])
            else:
                steps = [(handler, m) for m in messages]
                await apply_batch_in_transaction(pool, "bench", steps, store=Store)
            counts.append(len(sent))
        events += await pool.fetchval("SELECT count(*) FROM outbox")
    await pool.close()
    return counts[0], counts[1], events


async def figures(
    pool, dsn: str, scenarios: list[str], many: list[str], n: int, size: int, concurrency: int
) -> list[str]:
    hot = [f"h{i}" for i in range(200)]
    out = []
    if "many" in scenarios:
        rate, *cpu = await measure(pool, many, concurrency, size)
        out.append(f"many accounts {rate:6.0f} charges/s, {cpu_figure(*cpu)}")
    if "hot" in scenarios:
        hot_jobs = [hot[i % len(hot)] for i in range(n)]
        rate, *cpu = await measure(pool, hot_jobs, concurrency, size)
        out.append(f"one hot shared account {rate:6.0f} charges/s, {cpu_figure(*cpu)}")
        if size > 1:
            out.append(lock_figure(held))
    return out


def lock_figure(held: dict[str, float]) -> str:
    """How long a batch held the hot account's row lock, and what share of the run someone
    held it: near 100 %, that lock is the limit, and the rate is at most one batch per
    time held."""
    batches = held.get("batches") or 1
    authorise, post = held.get("authorise", 0.0), held.get("post", 0.0)
    return (
        f"hot row held {1000 * (authorise + post) / batches:5.1f} ms a batch "
        f"({1000 * authorise / batches:4.1f} authorising + {1000 * post / batches:4.1f} posting), "
        f"{100 * (authorise + post) / held['elapsed']:3.0f} % of the run; "
        f"of which, both batches, {1000 * held.get('deciding', 0.0) / batches:4.1f} deciding "
        f"the jobs, {1000 * held.get('writing', 0.0) / batches:4.1f} writing (Store.flush), "
        f"{1000 * held.get('committing', 0.0) / batches:4.1f} outbox rows and commit; "
        f"waited for {1000 * held.get('wait', 0.0) / batches:5.1f} ms a batch"
    )


def cpu_figure(client: float, server: float) -> str:
    """CPU per charge: in all, then the benchmark's process (the ledger's Python: handlers,
    domain, asyncpg) and the database's backends, where the time goes."""
    return f"{client + server:5.2f} ms CPU ({client:4.2f} Python + {server:4.2f} PostgreSQL)"


def statements_line(size: int, counts: tuple[int, int, int]) -> str:
    authorise, post, events = counts
    return (
        f"statements: {authorise} to authorise and {post} to post "
        f"{'a batch of ' + str(size) if size > 1 else 'one job'} "
        f"({(authorise + post) / size:.1f} per charge); "
        f"{events} events ({events / size:.2f} per charge)"
    )


async def child(dsn: str, n: int, size: int, scenarios: list[str], many: int) -> None:
    """One design's figures (statements, then each number in flight), as JSON lines: run
    with another revision's sources first on PYTHONPATH, against the parent's database."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    print(json.dumps(statements_line(size, await count_statements(dsn, size))), flush=True)
    pool = await create_pool(dsn, "ledger", min_size=4, max_size=40)
    logins = [f"m{i}" for i in range(many)]
    for concurrency in (1, 8, 32):
        got = await figures(pool, dsn, scenarios, logins, n, size, concurrency)
        print(json.dumps(got), flush=True)
    await pool.close()


def old_sources(rev: str, into: Path) -> str:
    """`libs` and the ledger's sources at git revision `rev`, unpacked in `into`; the
    PYTHONPATH that puts them first."""
    unpack(rev, ["libs", "services/account-ledger"], into)
    sources = [*sorted(into.glob("libs/*/src")), into / "services/account-ledger/src"]
    return ":".join(map(str, sources))


def run_child(
    pythonpath: str, dsn: str, n: int, size: int, scenarios: list[str], many: int
) -> subprocess.Popen:
    cmd = [sys.executable, __file__, "--child", dsn, "--jobs", str(n), "--batch", str(size)]
    cmd += ["--many", str(many)]
    if len(scenarios) == 1:
        cmd += ["--only", scenarios[0]]
    env = {**os.environ, "PYTHONPATH": pythonpath}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)


async def main(n: int, compare: str | None, rounds: int, batch: int, scenarios: list[str]) -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    with provide(durable=True) as infra, tempfile.TemporaryDirectory() as folder:
        _, dsn = await create_database(infra.database_url)
        pool = await create_pool(dsn, "ledger", min_size=4, max_size=40)
        async with pool.acquire() as conn:
            await apply_migrations(
                conn,
                "ledger",
                load_migrations("messaging", MESSAGING_MIGRATIONS)
                + load_migrations("account-ledger", MIGRATIONS),
            )
        many = [f"m{i}" for i in range(n)] if "many" in scenarios else []
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
        print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        revision = compare if compare not in (None, "revenue") else None
        old_path = old_sources(revision, Path(folder)) if revision else None
        # Alternated, so neither design always runs on the warmer database.
        shards = [domain.REVENUE_SHARDS, 1] if compare == "revenue" else [domain.REVENUE_SHARDS]
        sizes = [1, batch] if batch > 1 else [1]
        trees = [None, revision] if revision else [None]
        designs = [(t, s, b) for t in trees for s in shards for b in sizes] * rounds
        for tree, shards_now, size in designs:
            domain.REVENUE_SHARDS = shards_now
            how = f"in batches of up to {size}" if size > 1 else "one job per transaction"
            code = f"the ledger of {tree}" if tree else "this tree's ledger"
            print(f"{code}; charges credit {shards_now} revenue account(s); {how}")
            if tree:
                proc = run_child(old_path, dsn, n, size, scenarios, len(many))
                assert proc.stdout is not None
                print(f"  {json.loads(proc.stdout.readline())}")
                for concurrency in (1, 8, 32):
                    got = json.loads(proc.stdout.readline())
                    print(
                        f"  in flight {concurrency:>2}: {'; '.join(got)} "
                        f"(load {os.getloadavg()[0]:.2f})"
                    )
                if proc.wait() != 0:
                    raise SystemExit(f"the run of {tree} failed")
                continue
            print(f"  {statements_line(size, await count_statements(dsn, size))}")
            for concurrency in (1, 8, 32):
                got = await figures(pool, dsn, scenarios, many, n, size, concurrency)
                print(
                    f"  in flight {concurrency:>2}: {'; '.join(got)} "
                    f"(load {os.getloadavg()[0]:.2f})"
                )
        async with pool.acquire() as conn:
            problems = await verify(conn)
        print(f"ledger verify: {problems or 'OK'}")
        await pool.close()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--jobs", type=int, default=1000)
    p.add_argument(
        "--compare",
        nargs="?",
        const="revenue",
        metavar="REV",
        help="Also run with one revenue account; or, given a git revision, that revision's ledger.",
    )
    p.add_argument("--rounds", type=int, default=2, help="Rounds of each way compared.")
    p.add_argument(
        "--batch", type=int, default=1, help="Also charge in batches of up to this many jobs."
    )
    p.add_argument("--only", choices=("many", "hot"), help="Run only this scenario.")
    p.add_argument("--child", metavar="DSN", help=argparse.SUPPRESS)
    p.add_argument("--many", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args()
    scenarios = [args.only] if args.only else ["many", "hot"]
    if args.child:
        asyncio.run(child(args.child, args.jobs, args.batch, scenarios, args.many))
        raise SystemExit(0)
    rounds = args.rounds if args.compare or args.batch > 1 else 1
    asyncio.run(main(args.jobs, args.compare, rounds, args.batch, scenarios))
