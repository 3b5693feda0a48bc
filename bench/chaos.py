"""Chaos: jobs through replicas of every service on a 3-node RabbitMQ cluster while a
driver kills replicas, stops a broker node and restarts PostgreSQL (issue 13, item 6).

Starts a private 3-node cluster and PostgreSQL (platen.testing.cluster), installs Platen
on them, runs `--replicas` processes of each of the four services, every one given all
three nodes (it fails over), and then, at once:
- submits `--jobs` jobs through `capture.submit` at `--rate` a second for `--users`
  users, as an integrator does (a submit the broker does not confirm is sent again,
  same message id); one job in `DENIED_EVERY` is a user's with no credit (denied, never charged);
- the fault driver: every `--kill-every` seconds SIGKILLs a random replica and starts it
  again; once a tenth of the jobs are final, stops the node that leads most of Platen's
  queues for `--node-down` seconds and starts it again; once half are final, restarts
  PostgreSQL (`pg_ctl stop -m fast`, start).
When every job is final and nothing is left to do (outboxes and queues empty), it counts:
jobs lost (submitted, not final), charged twice, printed and not charged once, charged and
not printed, and runs `platenctl ledger verify`. Prints the figures.

    .venv/bin/python bench/chaos.py [--jobs 10000] [--replicas 3] [--rate 30]

tests/e2e/test_chaos.py runs it with 500 jobs (a SIGKILL every 8 s) in `make test` and
asserts lost == 0 and double == 0.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import itertools
import json
import logging
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import aio_pika
import asyncpg

from platen.events.routing import COMMANDS
from platen.localstack.services import MODULES
from platen.messaging import failover
from platen.testing.cluster import ClusterStack, cluster_stack
from platen.testing.documents import make_pdf
from platen.testing.isolation import with_vhost
from platen.testing.outages import Platen
from platen.testing.submits import submit_command

SCHEMAS = ("job_capture", "pricing", "ledger", "notification")
FINAL = ("printed", "denied", "failed", "cancelled")
DENIED_EVERY = 20
DOCUMENT = make_pdf(2)


def ctl(platen: Platen, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "platen.ctl", *args],
        env={**os.environ, "PLATEN_AMQP_URL": platen.ids.admin},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@dataclass
class Faults:
    """What the driver did, as it did it."""

    replicas_killed: int = 0
    broker_node_stops: int = 0
    database_restarts: int = 0
    # The stopped node, how many of the vhost's queues it led, and jobs then not final.
    stopped_node: str = ""
    queues_it_led: int = 0
    in_flight_at_node_stop: int = 0
    in_flight_at_database_restart: int = 0
    log: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.replicas_killed + self.broker_node_stops + self.database_restarts


class Submitter:
    """Sends `capture.submit` commands through any node of the cluster; a publish the
    broker does not confirm (its node went away) is sent again, the same message, on a
    new connection, until it is."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sent: list[str] = []
        self.resends = 0
        self._conn: aio_pika.abc.AbstractConnection | None = None
        self._exchange: aio_pika.abc.AbstractExchange | None = None
        self._lock = asyncio.Lock()

    async def _exchange_now(self) -> aio_pika.abc.AbstractExchange:
        async with self._lock:
            if self._exchange is None:
                # Bounded as a whole: a channel opened on a node that is stopping can wait
                # for ever, and every other submit waits on this lock meanwhile.
                self._exchange = await asyncio.wait_for(self._open(), 20)
            return self._exchange

    async def _open(self) -> aio_pika.abc.AbstractExchange:
        conn = await failover.connect(self.url)
        try:
            channel = await conn.channel(publisher_confirms=True, on_return_raises=True)
            exchange = await channel.get_exchange(COMMANDS, ensure=False)
        except BaseException:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 5)
            raise
        self._conn = conn
        return exchange

    async def _drop(self, exchange: aio_pika.abc.AbstractExchange) -> None:
        async with self._lock:
            if self._exchange is not exchange:
                return  # another submit has dropped it (and maybe connected again)
            conn, self._conn, self._exchange = self._conn, None, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 5)

    async def submit(self, user: str) -> None:
        job_id = uuid.uuid4()
        msg = submit_command(self.url, job_id, user, DOCUMENT, name="chaos.pdf")
        while True:
            exchange = None
            try:
                exchange = await self._exchange_now()
                await exchange.publish(
                    msg, routing_key="capture.submit", mandatory=True, timeout=15
                )
                self.sent.append(str(job_id))
                return
            except Exception:
                self.resends += 1
                if exchange is not None:
                    await self._drop(exchange)
                await asyncio.sleep(1)

    async def run(self, jobs: int, rate: float, users: list[str], broke: str) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        pending: set[asyncio.Task] = set()
        cycle = itertools.cycle(users)
        for i in range(jobs):
            user = broke if i % DENIED_EVERY == DENIED_EVERY - 1 else next(cycle)
            pending.add(asyncio.create_task(self.submit(user)))
            pending = {t for t in pending if not t.done()}
            await asyncio.sleep(max(0.0, start + (i + 1) / rate - loop.time()))
        await asyncio.gather(*pending)

    async def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()


async def _query(database_url: str, fn: Callable) -> object | None:
    """`fn(conn)` on a new connection, or None while the database is away."""
    try:
        conn = await asyncpg.connect(database_url, timeout=5)
    except Exception:
        return None
    try:
        return await fn(conn)
    except Exception:
        return None
    finally:
        with contextlib.suppress(Exception):
            await conn.close()


async def final_count(database_url: str, ids: list[str]) -> int | None:
    return await _query(
        database_url,
        lambda c: c.fetchval(
            "SELECT count(*) FROM job_capture.jobs WHERE state = ANY($2::text[]) "
            "AND job_id::text = ANY($1::text[])",
            ids,
            list(FINAL),
        ),
    )


async def quiet(stack: ClusterStack, platen: Platen, database_url: str) -> bool:
    """Nothing left to happen: every outbox empty and every service's queue without a
    message, ready or unacknowledged."""
    union = " UNION ALL ".join(f"SELECT count(*) AS n FROM {s}.outbox" for s in SCHEMAS)
    waiting = await _query(database_url, lambda c: c.fetchval(f"SELECT sum(n) FROM ({union}) t"))
    if waiting != 0:
        return False
    try:
        out = await asyncio.to_thread(
            stack.running()[0].ctl, "list_queues", "-q", "-p", platen.vhost, "name", "messages"
        )
    except Exception:
        return False
    # The services' own queues: the desktops' keep their notices (no client reads them
    # here), and dead letters are counted apart.
    ours = tuple(f"{name}." for name in MODULES)
    for line in out.splitlines():
        name, _, count = line.rpartition("\t")
        if name.startswith(ours) and not name.endswith(".dlq") and count.strip() != "0":
            return False
    return True


def replay_dead_letters(platen: Platen, replayed: collections.Counter[str]) -> bool:
    """`platenctl dlq replay <service> --all` for each service with dead letters, as an
    operator does; whether there were any."""
    out = ctl(platen, "dlq", "list", "--json")
    if out.returncode != 0:
        return False  # a service not answering yet: the next round asks again
    letters = {name: found for name, found in json.loads(out.stdout).items() if found}
    for name, found in letters.items():
        if ctl(platen, "dlq", "replay", name, "--all").returncode == 0:
            replayed.update(letter["message_type"] for letter in found)
    return bool(letters)


async def respawn(platen: Platen, key: str) -> None:
    """Start a killed process again, as a supervisor (systemd, a container engine) does."""
    name, _, replica = key.partition("#")
    if replica:
        platen.services.start_replica(name, int(replica))
    else:
        platen.services.start(name)


async def drive(
    stack: ClusterStack,
    platen: Platen,
    submitter: Submitter,
    jobs: int,
    args: argparse.Namespace,
    done: asyncio.Event,
    rng: random.Random,
    faults: Faults,
) -> None:
    """Inject faults until `done`, noting them in `faults`: kills all along; the broker
    node and the database once each, at a tenth and at half of the jobs final (so jobs are
    in flight)."""
    database_url = platen.services.database_url
    node_done = db_done = False
    next_kill = time.monotonic() + args.kill_every
    while not done.is_set():
        final = await final_count(database_url, list(submitter.sent)) or 0
        # A kill that is due comes first. Behind the node's stop (its 10 s down) and the
        # database's restart, it could come too late: on a quiet machine every job was
        # final by then, the run ended, and no replica had been killed at all.
        if time.monotonic() >= next_kill:
            key = rng.choice(sorted(platen.services.procs))
            faults.log.append(f"SIGKILL {key}, {final} final")
            await asyncio.to_thread(platen.services.kill, key)
            await respawn(platen, key)
            faults.replicas_killed += 1
            next_kill = time.monotonic() + args.kill_every
        elif not node_done and final >= jobs // 10:
            leaders = await asyncio.to_thread(stack.leaders, platen.vhost)
            nodename, led = leaders.most_common(1)[0]
            node = stack.node_named(nodename)
            faults.stopped_node, faults.queues_it_led = nodename, led
            faults.in_flight_at_node_stop = len(submitter.sent) - final
            faults.log.append(f"stop {nodename} (leads {led} queues), {final} final")
            await asyncio.to_thread(stack.stop_node, node)
            await asyncio.sleep(args.node_down)
            await asyncio.to_thread(stack.start_node, node)
            faults.broker_node_stops += 1
            node_done = True
        elif not db_done and final >= jobs // 2:
            faults.in_flight_at_database_restart = len(submitter.sent) - final
            faults.log.append(f"restart PostgreSQL, {final} final")
            await asyncio.to_thread(stack.stop_database)
            await asyncio.to_thread(stack.start_database)
            faults.database_restarts += 1
            db_done = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), 1)


async def outcome(database_url: str, ids: list[str]) -> dict[str, int]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT j.job_id::text AS job_id, j.state, "
            "(SELECT count(*) FROM ledger.transactions t "
            " WHERE t.kind = 'charge' AND t.job_id = j.job_id) AS charges "
            "FROM job_capture.jobs j WHERE j.job_id::text = ANY($1::text[])",
            ids,
        )
    finally:
        await conn.close()
    states = {r["job_id"]: (r["state"], r["charges"]) for r in rows}
    final = {k: v for k, v in states.items() if v[0] in FINAL}
    return {
        "lost": len(ids) - len(final),
        "double": sum(1 for _, n in final.values() if n > 1),
        "printed": sum(1 for s, _ in final.values() if s == "printed"),
        "printed_charged_once": sum(1 for s, n in final.values() if s == "printed" and n == 1),
        "printed_not_charged": sum(1 for s, n in final.values() if s == "printed" and n == 0),
        "charged_not_printed": sum(1 for s, n in final.values() if s != "printed" and n > 0),
        "denied": sum(1 for s, _ in final.values() if s == "denied"),
        "failed": sum(1 for s, _ in final.values() if s == "failed"),
        "cancelled": sum(1 for s, _ in final.values() if s == "cancelled"),
    }


async def run_on(stack: ClusterStack, platen: Platen, args: argparse.Namespace) -> dict:
    """The chaos run on a started system; the figures."""
    users = [f"chaos{i}" for i in range(args.users)]
    for user in users:
        out = ctl(platen, "user", "add", user, "--balance", "1000000.00")
        if out.returncode != 0:
            raise RuntimeError(out.stderr)
    broke = "chaos-broke"  # no credit, no overdraft: each of its jobs is denied
    ctl(platen, "user", "add", broke)
    ctl(platen, "printer", "add", "lab-1", "--price-per-page", "0.10")
    database_url = platen.services.database_url
    submitter = Submitter(stack.service_url(with_vhost(stack.rabbit.amqp_url, platen.vhost)))
    done = asyncio.Event()
    replayed: collections.Counter[str] = collections.Counter()
    rng = random.Random(args.seed)
    began = time.monotonic()
    faults = Faults()
    driver = asyncio.create_task(
        drive(stack, platen, submitter, args.jobs, args, done, rng, faults)
    )
    try:
        await submitter.run(args.jobs, args.rate, users, broke)
        submitted_in = time.monotonic() - began
        deadline = time.monotonic() + args.drain_timeout
        quiet_rounds = 0
        while time.monotonic() < deadline:
            final = await final_count(database_url, submitter.sent)
            # The node and the database are failed once each before the end.
            faulted = faults.broker_node_stops and faults.database_restarts
            if faulted and await quiet(stack, platen, database_url):
                all_final = final == len(submitter.sent)
                if all_final:
                    done.set()
                if not done.is_set():
                    # The faults end with the last submit drained: what follows is the
                    # operator's part, not more chaos.
                    done.set()
                elif await asyncio.to_thread(replay_dead_letters, platen, replayed):
                    # Every job can be final with letters still dead: a submit dead-lettered
                    # at the delivery limit whose resend finished the job. The operator
                    # replays them all the same (handled again, they must change nothing),
                    # and the run waits to be quiet once more.
                    quiet_rounds = 0
                elif all_final:
                    break
                else:
                    # Nothing moving, nothing to replay, jobs not final: lost. Ten quiet
                    # seconds in a row say so (a sweep could still be due).
                    quiet_rounds += 1
                    if quiet_rounds >= 10:
                        break
            if driver.done() and not done.is_set():
                driver.result()  # a fault that could not be injected (or undone) says so
            await asyncio.sleep(1)
        elapsed = time.monotonic() - began
    finally:
        done.set()
        await driver
        await submitter.close()
    figures = await outcome(database_url, submitter.sent)
    verify = ctl(platen, "ledger", "verify")
    return {
        "jobs": len(submitter.sent),
        "replicas per service": args.replicas,
        "faults injected": faults.total,
        "replicas SIGKILLed": faults.replicas_killed,
        "broker node stops": faults.broker_node_stops,
        "stopped node led queues": faults.queues_it_led,
        "jobs in flight at node stop": faults.in_flight_at_node_stop,
        "database restarts": faults.database_restarts,
        "jobs in flight at database restart": faults.in_flight_at_database_restart,
        "resent submits": submitter.resends,
        "submitted in s": round(submitted_in, 1),
        "time s (first submit to all final and quiet)": round(elapsed, 1),
        **figures,
        # Messages the broker dead-lettered at its delivery limit (5): a delivery returned
        # to the queue each time the process holding it was killed or lost its node. The
        # operator's `platenctl dlq replay` handled each again; what is left after that.
        "dead-lettered then replayed": dict(replayed),
        "dead letters": platen.dead_letters(),
        "ledger verify": "ok" if verify.returncode == 0 else verify.stdout + verify.stderr,
        "fault log": faults.log,
    }


def start_platen(stack: ClusterStack, log_dir: Path, replicas: int) -> Platen:
    """Platen on the cluster: `replicas` processes of every service, all of them running
    every background task (expiry sweeps, relays, reconciliation, quotas)."""
    platen = stack.platen(log_dir)
    for name in MODULES:
        for n in range(2, replicas + 1):
            platen.services.start_replica(name, n)
    out = ctl(platen, "status", "--timeout", "180")
    if out.returncode != 0:
        raise RuntimeError(f"services did not come up: {out.stdout}{out.stderr}")
    return platen


def options() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=10_000)
    p.add_argument("--replicas", type=int, default=3, help="processes of each service")
    p.add_argument("--rate", type=float, default=30, help="jobs submitted a second")
    p.add_argument("--kill-every", type=float, default=10, help="seconds between SIGKILLs")
    p.add_argument("--node-down", type=float, default=15, help="seconds a node stays down")
    p.add_argument("--drain-timeout", type=float, default=3600)
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--users", type=int, default=10, help="users with credit")
    return p


async def chaos(jobs: int = 10_000, log_dir: Path | None = None, **settings: object) -> dict:
    """The whole bench: a cluster, Platen on it, the run, the figures; all stopped after.
    `settings` are the command line's options (`replicas=2`, `kill_every=8`, ...)."""
    args = options().parse_args([])
    vars(args).update(settings, jobs=jobs)
    log_dir = log_dir or Path(tempfile.mkdtemp(prefix="platen-chaos-")) / "logs"
    with cluster_stack() as stack:
        platen = await asyncio.to_thread(start_platen, stack, log_dir, args.replicas)
        try:
            result = await run_on(stack, platen, args)
        finally:
            platen.services.stop_all()
    result["service logs"] = str(log_dir)
    return result


def main() -> None:
    a = options().parse_args()
    started = time.monotonic()
    result = asyncio.run(chaos(**vars(a)))
    result["wall time s (with cluster start)"] = round(time.monotonic() - started, 1)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    # Failed connection attempts to a stopped node are expected; the library logs each.
    logging.getLogger("aio_pika").setLevel(logging.CRITICAL)
    logging.getLogger("aiormq").setLevel(logging.CRITICAL)
    main()
