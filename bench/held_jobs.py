"""100,000 jobs held waiting for their users' answers at once: each service's memory, and
how fast a new prompt still reaches its desktop (issue 14, goal 4).

Starts RabbitMQ, PostgreSQL and the four services as processes. alice confirms every job,
so each of her jobs is held until she answers: job-capture keeps it `priced` with its
document spooled, the ledger keeps the question open, notification keeps the prompt.

1. Empty: `--prompts` of alice's jobs, one after another, each timed from `capture.submit`
   to the `job_prompt` in her desktop queue (read by a consumer, as the client reads it),
   and from the ledger's `job.input_required` (seen by a queue of the bench's own bound to
   it) to that prompt: the notification hop alone.
2. The services are stopped and `--held` jobs are added to every service's tables by
   copying the rows alice's first job left in each table that has a `job_id` column,
   with new job ids, spread over `--users` logins, deadlines an hour away: the rows the
   services wrote, in the shape they wrote them, without 100,000 real submissions (too
   slow on 2 cores). Then the services start again, so they load whatever they load.
3. Full: the same measures again.

Each phase reports every service's resident memory (the process and its children: the
analysis workers) and the CPU time each used over `--idle` seconds of nobody printing (a
timer that scans every held job would show there).

Not in this bench: the prompts of the copied jobs are not in any broker queue (the
desktops' queues at scale are desktops.py's part).

    .venv/bin/python bench/held_jobs.py [--held 100000] [--users 10000] [--prompts 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import aio_pika
import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

from bench.capacity import (
    cpu_seconds,
    load_average,
    prompting_system,
    rss_mib,
    spread,
    tree,
)
from bench.desktop_flood import Desktop, read_alices_desktop
from bench.desktop_flood import prompt_times as submit_and_wait
from platen.events.routing import EVENTS
from platen.localstack.services import MODULES, ServiceProcesses
from platen.testing.infra import provide

SCHEMAS = {"job-capture": "job_capture", "account-ledger": "ledger", "notification": "notification"}
# Columns a copy gets new values in: its own id, its user, its deadline.
DEADLINES = ("deadline_at", "expires_at")
LOGINS = ("user_login",)


class Watch(Desktop):
    """alice's desktop queue (`Desktop`) and a tap on `job.input_required`: when each job's
    question was asked and when its prompt reached the desktop (one process, one clock)."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: dict[str, float] = {}

    async def on_asked(self, raw) -> None:
        self.asked[raw.correlation_id] = time.perf_counter()
        self.arrived.set()


async def prompt_times(url: str, n: int, warm_up: int = 3) -> tuple[list[float], list[float]]:
    """`n` of alice's jobs one after another (after `warm_up` untimed ones): ms from
    submit to prompt, and from `job.input_required` to prompt."""
    conn = await aio_pika.connect(url)
    async with conn:
        channel = await conn.channel()
        watch = Watch()
        await read_alices_desktop(channel, watch)
        tap = await channel.declare_queue(exclusive=True)
        await tap.bind(EVENTS, routing_key="job.input_required")
        await tap.consume(watch.on_asked, no_ack=True)
        await submit_and_wait(channel, url, watch, warm_up)
        watch.prompted.clear()
        submit_ms = await submit_and_wait(channel, url, watch, n)
        async with asyncio.timeout(60):  # each question seen by the tap too
            while set(watch.prompted) - set(watch.asked):
                watch.arrived.clear()
                await watch.arrived.wait()
        hop_ms = [(watch.prompted[j] - watch.asked[j]) * 1000 for j in watch.prompted]
        return submit_ms, hop_ms


def footprint(services: ServiceProcesses, idle: float) -> dict[str, tuple[float, float, float]]:
    """service -> (RSS of its process, RSS with its children, CPU seconds over `idle` s)."""
    trees = {name: tree(services.procs[name].pid) for name in MODULES}
    before = {name: cpu_seconds(pids) for name, pids in trees.items()}
    time.sleep(idle)
    out = {}
    for name, pids in trees.items():
        pids = tree(services.procs[name].pid)
        out[name] = (
            rss_mib([services.procs[name].pid]),
            rss_mib(pids),
            cpu_seconds(pids) - before[name],
        )
    return out


async def copy_held(db: str, template: uuid.UUID, held: int, users: int) -> dict[str, int]:
    """Copy every row the template job has in each service's tables `held` times; the
    number of rows added per table."""
    conn = await asyncpg.connect(db)
    added = {}
    try:
        await conn.execute(
            "CREATE TEMP TABLE held AS SELECT gen_random_uuid() AS job_id,"
            " 'held' || (n % $2) AS login FROM generate_series(1, $1) AS n",
            held,
            users,
        )
        for schema in SCHEMAS.values():
            tables = await conn.fetch(
                "SELECT table_name FROM information_schema.columns"
                " WHERE table_schema = $1 AND column_name = 'job_id'",
                schema,
            )
            # A table that refers to another (spool -> jobs) is filled after it.
            tables = sorted(tables, key=lambda r: r["table_name"] != "jobs")
            for (table,) in tables:
                if not await conn.fetchval(
                    f'SELECT count(*) FROM {schema}."{table}" WHERE job_id = $1', template
                ):
                    continue
                columns = await conn.fetch(
                    "SELECT column_name, column_default, is_identity, is_generated"
                    " FROM information_schema.columns WHERE table_schema = $1"
                    " AND table_name = $2 ORDER BY ordinal_position",
                    schema,
                    table,
                )
                names, values = [], []
                for c in columns:
                    name = c["column_name"]
                    serial = (c["column_default"] or "").startswith("nextval(")
                    if serial or c["is_identity"] == "YES" or c["is_generated"] == "ALWAYS":
                        continue  # its own new value
                    names.append(f'"{name}"')
                    if name == "job_id":
                        values.append("h.job_id")
                    elif name in LOGINS:
                        values.append("h.login")
                    elif name in DEADLINES:
                        values.append("now() + interval '1 hour'")
                    else:
                        values.append(f't."{name}"')
                status = await conn.execute(
                    f'INSERT INTO {schema}."{table}" ({", ".join(names)})'
                    f' SELECT {", ".join(values)} FROM {schema}."{table}" t, held h'
                    " WHERE t.job_id = $1",
                    template,
                )
                added[f"{schema}.{table}"] = int(status.split()[-1])
        # The held jobs' users have desktops too, as notification records them: each is an
        # identity it reconciles with the broker (here: declares its queue) at start-up.
        status = await conn.execute(
            "INSERT INTO notification.desktop_users (login) SELECT DISTINCT login FROM held"
        )
        added["notification.desktop_users"] = int(status.split()[-1])
        await conn.execute("ANALYZE")  # as autovacuum would soon: plans for the rows there
    finally:
        await conn.close()
    return added


async def first_held_job(db: str) -> uuid.UUID:
    conn = await asyncpg.connect(db)
    try:
        return await conn.fetchval(
            "SELECT job_id FROM ledger.pending_inputs WHERE user_login = 'alice'"
            " AND state = 'open' ORDER BY created_at LIMIT 1"
        )
    finally:
        await conn.close()


def report(label: str, url: str, services: ServiceProcesses, args) -> None:
    submit_ms, hop_ms = asyncio.run(prompt_times(url, args.prompts))
    print(f"\n== {label} (load average {load_average()})")
    print(f"submit -> prompt on the desktop:            {spread(submit_ms)}")
    print(f"job.input_required -> prompt on the desktop: {spread(hop_ms)}")
    print(f"(load average after the prompts: {load_average()})")
    idle = f"CPU over {args.idle} s idle"
    print(f"{'service':<16} {'RSS':>10} {'with children':>14} {idle:>20}")
    for name, (own, whole, cpu) in footprint(services, args.idle).items():
        print(f"{name:<16} {own:>7.1f} MiB {whole:>10.1f} MiB {cpu:>17.2f} s")
    sys.stdout.flush()


def ready(url: str) -> bool:
    """Whether every service says it is ready (`platenctl status --json`): consuming all
    its queues, its start-up work done. (A service answers the question before that.)"""
    env = {"PLATEN_AMQP_URL": url, "PATH": os.environ.get("PATH", "")}
    out = subprocess.run(
        [sys.executable, "-m", "platen.ctl", "status", "--json", "--timeout", "10"],
        env=env,
        capture_output=True,
        text=True,
    )
    try:
        answers = json.loads(out.stdout)
    except ValueError:
        return False
    return all(a is not None and a["ready"] for a in answers.values())


def restart(url: str, services: ServiceProcesses, label: str, *, stopped: bool = False) -> None:
    """Start the services again and time it until every one is ready."""
    if not stopped:
        services.stop_all()
    started = time.perf_counter()
    services.start_all()
    while not ready(url):
        if time.perf_counter() - started > 1800:
            raise RuntimeError("the services were not ready after 30 minutes")
        time.sleep(1)
    took = time.perf_counter() - started
    print(f"restart with {label}: every service ready after {took:.1f} s", flush=True)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--held", type=int, default=100_000)
    p.add_argument("--users", type=int, default=10_000)
    p.add_argument("--prompts", type=int, default=200)
    p.add_argument("--idle", type=int, default=30)
    args = p.parse_args()
    env = {"PLATEN_LOG_LEVEL": "WARNING"}
    with (
        provide(durable=True) as infra,
        prompting_system(infra, env, ("alice",), "100000") as system,
    ):
        url, db, services, _ = system
        print(f"infrastructure: {infra.source}; {os.cpu_count()} cores")
        report("0 jobs held (besides alice's own)", url, services, args)
        restart(url, services, "0 jobs held")

        template = asyncio.run(first_held_job(db))
        services.stop_all()
        started = time.perf_counter()
        added = asyncio.run(copy_held(db, template, args.held, args.users))
        print(f"\ncopied job {template} {args.held} times over {args.users} logins"
              f" in {time.perf_counter() - started:.0f} s:")  # fmt: skip
        for table, rows in added.items():
            print(f"  {table}: {rows} rows")
        restart(url, services, f"{args.held} jobs held", stopped=True)
        report(f"{args.held} jobs held", url, services, args)
        # The first start after the copy made the users' desktop queues; this one
        # finds them there, as every later restart of a site does.
        restart(url, services, f"{args.held} jobs held, again")


if __name__ == "__main__":
    main()
