"""Long outages with jobs flowing: the broker stopped, the broker frozen, the database
stopped (issue 12, "Done when" 1 and 2 at full length; tests/e2e/test_long_outages.py runs
them shortened in `make test`).

Starts a RabbitMQ and a PostgreSQL of its own (platen.testing.outages: the outages must not
hit anyone else's servers) and the four services with their production settings, then for
each scenario in turn:
1. a steady stream of jobs (`--rate` a second, through `capture.submit` as the tests'
   integrator does) and, just before the outage, a burst (`--burst`), so that jobs are in
   flight (captured, not yet charged) when it starts; and a few jobs of a user who never
   confirms them, whose deadline (`--deadline`) falls inside the outage;
2. the outage, for its full length, the stream still trying: a submit the broker does not
   confirm is sent again, with the same message id, as a print server holding its job would;
3. recovery, then the stream stops and the system drains.
Prints per scenario: jobs, jobs in flight when the outage started, committed events waiting
in the outboxes at the peak and the oldest one's age, the relays' failed publishes, the time
to drain after recovery, jobs charged once / twice / never, dead letters, `ledger verify`.
Asserts nothing (the machine is shared): the figures go into bench/README.md.

    .venv/bin/python bench/outage.py [--broker-down 360] [--broker-frozen 360]
        [--database-down 120] [--rate 5] [--burst 100]

A scenario of length 0 is skipped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aio_pika
import asyncpg

from platen.events.routing import COMMANDS
from platen.testing.documents import make_pdf
from platen.testing.isolation import with_vhost
from platen.testing.outages import Platen, PrivateStack, private_stack
from platen.testing.submits import submit_command

SCHEMAS = ("job_capture", "pricing", "ledger", "notification")
RELAY_FAILED = "outbox relay failed, will retry"
DOCUMENT = make_pdf(3)


def ctl(platen: Platen, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "platen.ctl", *args],
        env={**os.environ, "PLATEN_AMQP_URL": platen.ids.admin},
        capture_output=True,
        text=True,
        timeout=300,
    )


class Stream:
    """Submits one job after another at `rate` a second; a job the broker does not confirm
    is sent again (same message) until it is, and the next waits for it."""

    def __init__(
        self, amqp_url: str, user: str, rate: float, deadline_seconds: int | None = None
    ) -> None:
        self.url = amqp_url
        self.user = user
        self.deadline_seconds = deadline_seconds
        self.interval = 1 / rate
        self.submitted: list[str] = []
        self.resends = 0
        self._stop = asyncio.Event()
        self._conn: aio_pika.abc.AbstractConnection | None = None
        self._exchange = None

    async def _publish(self, message: aio_pika.Message) -> None:
        if self._exchange is None:
            self._conn = await asyncio.wait_for(aio_pika.connect(self.url), 10)
            ch = await self._conn.channel(publisher_confirms=True, on_return_raises=True)
            self._exchange = await ch.get_exchange(COMMANDS)
        await self._exchange.publish(
            message, routing_key="capture.submit", mandatory=True, timeout=10
        )

    async def _drop(self) -> None:
        conn, self._conn, self._exchange = self._conn, None, None
        if conn is not None:
            # A dead connection has nothing left to close.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 5)

    async def submit(self, job_id: uuid.UUID) -> None:
        msg = submit_command(
            self.url, job_id, self.user, DOCUMENT, deadline_seconds=self.deadline_seconds
        )
        while True:
            try:
                await self._publish(msg)
                self.submitted.append(str(job_id))
                return
            except Exception:
                self.resends += 1
                await self._drop()
                await asyncio.sleep(1)

    async def burst(self, n: int) -> None:
        await asyncio.gather(*(self.submit(uuid.uuid4()) for _ in range(n)))

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stop.is_set():
            started = loop.time()
            await self.submit(uuid.uuid4())
            await asyncio.sleep(max(0.0, self.interval - (loop.time() - started)))

    async def stop(self) -> None:
        self._stop.set()
        await self._drop()


async def outbox(conn: asyncpg.Connection) -> tuple[int, float]:
    """(rows waiting in the four outboxes, the oldest one's age in seconds)."""
    union = " UNION ALL ".join(
        f"SELECT count(*) AS n, min(created_at) AS first FROM {s}.outbox" for s in SCHEMAS
    )
    row = await conn.fetchrow(
        f"SELECT sum(n)::int AS n, extract(epoch FROM now() - min(first)) AS age FROM ({union}) t"
    )
    return row["n"], float(row["age"] or 0)


async def charges(conn: asyncpg.Connection, ids: list[str]) -> dict[str, int]:
    rows = await conn.fetch(
        "SELECT job_id::text AS job_id, count(*) AS n FROM ledger.transactions "
        "WHERE kind = 'charge' AND job_id::text = ANY($1::text[]) GROUP BY job_id",
        ids,
    )
    return {r["job_id"]: r["n"] for r in rows}


async def connect(database_url: str) -> asyncpg.Connection | None:
    try:
        return await asyncpg.connect(database_url, timeout=5)
    except Exception:
        return None


class Watch:
    """Samples the outboxes once a second (whenever the database answers)."""

    def __init__(self, database_url: str) -> None:
        self.url = database_url
        self.peak = 0
        self.oldest = 0.0
        self._task: asyncio.Task | None = None

    async def _run(self) -> None:
        while True:
            conn = await connect(self.url)
            if conn is not None:
                try:
                    n, age = await outbox(conn)
                    self.peak, self.oldest = max(self.peak, n), max(self.oldest, age)
                except Exception:  # the database went away between two reads
                    pass
                finally:
                    await conn.close()
            await asyncio.sleep(1)

    def __enter__(self) -> Watch:
        self._task = asyncio.create_task(self._run())
        return self

    def __exit__(self, *exc) -> None:
        if self._task:
            self._task.cancel()


SCENARIOS = {
    "broker stopped": (PrivateStack.stop_broker, PrivateStack.start_broker),
    "broker frozen (SIGSTOP)": (PrivateStack.freeze_broker, PrivateStack.thaw_broker),
    "database stopped (pg_ctl stop -m fast)": (
        PrivateStack.stop_database,
        PrivateStack.start_database,
    ),
}


def relay_failures(platen: Platen) -> int:
    return sum(platen.services.log(n).count(RELAY_FAILED) for n in platen.services.procs)


async def scenario(
    stack: PrivateStack, platen: Platen, name: str, seconds: float, args, index: int
) -> dict[str, object]:
    user = f"user{index}"
    out = ctl(platen, "user", "add", user, "--balance", "100000.00")
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    amqp_url = with_vhost(stack.rabbit.amqp_url, platen.vhost)
    database_url = platen.services.database_url
    stream = Stream(amqp_url, user, args.rate)
    # A user who must confirm each job and never does: job-capture cancels those jobs at
    # their deadline, inside the outage, by itself; so events are committed while the
    # broker is away and wait in the outbox for the rest of it.
    waiter = f"waiter{index}"
    ctl(platen, "user", "add", waiter, "--balance", "100.00")
    ctl(platen, "user", "set", waiter, "--selection", "confirm")
    unanswered = Stream(amqp_url, waiter, args.rate, deadline_seconds=args.deadline)
    stop, start = SCENARIOS[name]
    failures_before = relay_failures(platen)
    with Watch(database_url) as watch:
        runner = asyncio.create_task(stream.run())
        await asyncio.sleep(args.warmup)
        await unanswered.burst(args.unanswered)
        await stream.burst(args.burst)
        conn = await asyncpg.connect(database_url)
        in_flight = len(stream.submitted) - len(await charges(conn, stream.submitted))
        await conn.close()
        began = time.monotonic()
        await asyncio.to_thread(stop, stack)
        await asyncio.sleep(max(0.0, seconds - (time.monotonic() - began)))
        await asyncio.to_thread(start, stack)
        recovered = time.monotonic()
        await asyncio.sleep(args.after)
        await stream.stop()
        await runner
        ids = list(stream.submitted)
        drained = None
        deadline = time.monotonic() + args.drain_timeout
        while time.monotonic() < deadline:
            conn = await connect(database_url)
            if conn is not None:
                try:
                    done = len(await charges(conn, ids)) == len(ids)
                    if done and (await outbox(conn))[0] == 0:
                        drained = time.monotonic() - recovered
                        break
                finally:
                    await conn.close()
            await asyncio.sleep(0.5)
    await asyncio.sleep(5)  # a second charge, were there one, would be in by now
    conn = await asyncpg.connect(database_url)
    charged = await charges(conn, ids)
    cancelled = await conn.fetchval(
        "SELECT count(*) FROM job_capture.jobs WHERE state = 'cancelled' "
        "AND job_id::text = ANY($1::text[])",
        unanswered.submitted,
    )
    await conn.close()
    shown = json.loads(ctl(platen, "user", "show", waiter, "--json").stdout)
    verify = ctl(platen, "ledger", "verify")
    return {
        "scenario": name,
        "outage s (stop begun to back)": round(recovered - began),
        "jobs": len(ids),
        "in flight at start": in_flight,
        "resent submits": stream.resends,
        "outbox peak rows": watch.peak,
        "oldest unpublished s": round(watch.oldest),
        "relay failed publishes": relay_failures(platen) - failures_before,
        "drained s after recovery": None if drained is None else round(drained, 1),
        "charged once": sum(1 for n in charged.values() if n == 1),
        "charged twice+": sum(1 for n in charged.values() if n > 1),
        "never charged": len(ids) - len(charged),
        "unanswered jobs cancelled at their deadline": f"{cancelled} of {args.unanswered}",
        "their user's balance / held after": f"{shown['balance']} / {shown['held']}",
        "dead letters": platen.dead_letters(),
        "ledger verify": "ok" if verify.returncode == 0 else verify.stdout + verify.stderr,
    }


async def main(args) -> None:
    lengths = {
        "broker frozen (SIGSTOP)": args.broker_frozen,
        "broker stopped": args.broker_down,
        "database stopped (pg_ctl stop -m fast)": args.database_down,
    }
    folder = Path(tempfile.mkdtemp(prefix="platen-outage-bench-"))
    with private_stack() as stack:
        platen = await asyncio.to_thread(stack.platen, folder / "logs")
        try:
            out = ctl(platen, "status", "--timeout", "120")
            if out.returncode != 0:
                raise RuntimeError(f"services did not come up: {out.stdout}{out.stderr}")
            ctl(platen, "printer", "add", "lab-1", "--price-per-page", "0.10")
            results = []
            for index, (name, seconds) in enumerate(lengths.items()):
                if seconds <= 0:
                    continue
                print(f"# {name} for {seconds} s ...", flush=True)
                result = await scenario(stack, platen, name, seconds, args, index)
                results.append(result)
                for key, value in result.items():
                    print(f"  {key}: {value}", flush=True)
        finally:
            platen.services.stop_all()
    print(f"service logs: {folder / 'logs'}")


if __name__ == "__main__":
    # The stream's failed connection attempts during an outage are expected; the client
    # library would log each one.
    logging.getLogger("aio_pika").setLevel(logging.CRITICAL)
    logging.getLogger("aiormq").setLevel(logging.CRITICAL)
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--broker-down", type=float, default=360)
    p.add_argument("--broker-frozen", type=float, default=360)
    p.add_argument("--database-down", type=float, default=120)
    p.add_argument("--rate", type=float, default=5, help="jobs a second, steady")
    p.add_argument("--burst", type=int, default=100, help="jobs just before the outage")
    p.add_argument("--unanswered", type=int, default=5, help="jobs nobody confirms")
    p.add_argument("--deadline", type=int, default=30, help="their deadline, seconds")
    p.add_argument("--warmup", type=float, default=15, help="seconds of stream before")
    p.add_argument("--after", type=float, default=15, help="seconds of stream after")
    p.add_argument("--drain-timeout", type=float, default=900)
    asyncio.run(main(p.parse_args()))
