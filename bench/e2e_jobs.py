"""End-to-end job throughput and latency: capture.submit -> ... -> job.charged.

Starts RabbitMQ, PostgreSQL (local binaries, or PLATEN_TEST_* from the environment) and the
four services as processes, then:
1. burst: submits N jobs at once and reports jobs per second through all hops;
2. steady: submits jobs at a fixed rate and reports the latency from submit to
   `job.charged` (p50, p90, p99, max); with `--hops`, also each hop's share of it and the
   slowest jobs hop by hop.
Prints the figures; does not assert anything (the machine is shared and noisy).

    .venv/bin/python bench/e2e_jobs.py [--burst 300] [--rate 20] [--seconds 15] [--hops]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import itertools
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import aio_pika
import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

from bench import bare_chain
from bench.capacity import listening_pid, load_average, percentile, tree_cpu_seconds
from platen.events.base import HEADER_VERSION
from platen.events.jobs import SubmitJob
from platen.events.registry import encode
from platen.events.routing import COMMANDS, EVENTS
from platen.job_capture.isolation import IsolatedAnalyser, Limits
from platen.localstack.services import ServiceProcesses
from platen.rpc.client import signed_in_as
from platen.testing.documents import make_pdf
from platen.testing.infra import provide
from platen.testing.isolation import Vhosts, create_database


def ctl(url: str, *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "platen.ctl", *args],
        check=True,
        env={"PLATEN_AMQP_URL": url, "PATH": ""},
        capture_output=True,
    )


# The events of a job's path, in order: where a slow job spent its time, hop by hop.
HOPS = ("job.captured", "job.priced", "job.authorized", "job.printed", "job.charged")


class Clock:
    """Submit times and charge times per job id, and when each of its events was seen."""

    def __init__(self) -> None:
        self.sent: dict[str, float] = {}
        self.charged: dict[str, float] = {}
        self.seen: dict[str, dict[str, float]] = {}
        self.all_charged = asyncio.Event()

    def reset(self) -> None:
        self.sent.clear()
        self.charged.clear()
        self.seen.clear()
        self.all_charged.clear()

    async def on_event(self, raw) -> None:
        if raw.correlation_id and raw.type in HOPS:
            self.seen.setdefault(raw.correlation_id, {}).setdefault(raw.type, time.perf_counter())
        if raw.type == "job.charged" and raw.correlation_id:
            self.charged.setdefault(raw.correlation_id, time.perf_counter())
            if self.sent and all(i in self.charged for i in self.sent):
                self.all_charged.set()


async def submit(exchange, doc: bytes, clock: Clock, sender: str | None) -> None:
    job_id = uuid.uuid4()
    msg = SubmitJob(
        job_id=job_id,
        user="bench",
        printer="lab-1",
        document_name="b.pdf",
        document=base64.b64encode(doc),
    )
    clock.sent[str(job_id)] = time.perf_counter()
    await exchange.publish(
        aio_pika.Message(
            encode(msg),
            type=msg.message_type,
            message_id=str(uuid.uuid4()),
            headers={HEADER_VERSION: 1},
            app_id="bench",
            timestamp=datetime.now(UTC),
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            user_id=sender,  # job-capture answers only a sender it can name
        ),
        routing_key="capture.submit",
        mandatory=True,
    )


async def wait_all(clock: Clock, timeout: float) -> None:
    """Until every job sent so far is charged (or `timeout` passes)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not all(i in clock.charged for i in clock.sent):
        clock.all_charged.clear()
        remaining = deadline - loop.time()
        if remaining <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(clock.all_charged.wait(), remaining)


class BareClock:
    """The same for the bare chain: a chain's end is its message on the last queue."""

    def __init__(self) -> None:
        self.sent: dict[str, float] = {}
        self.charged: dict[str, float] = {}
        self.seen: dict[str, dict[str, float]] = {}
        self.all_charged = asyncio.Event()

    reset = Clock.reset

    async def on_end(self, raw) -> None:
        self.charged.setdefault(raw.message_id, time.perf_counter())
        if self.sent and all(i in self.charged for i in self.sent):
            self.all_charged.set()


async def start_chain(exchange, clock: BareClock, body: bytes) -> None:
    chain_id = str(uuid.uuid4())
    clock.sent[chain_id] = time.perf_counter()
    await exchange.publish(
        aio_pika.Message(body, message_id=chain_id, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
        routing_key=bare_chain.queue(0),
    )


def processes(url: str, db: str, services: ServiceProcesses) -> dict[str, int]:
    """Each process tree whose CPU a job costs: the services (with their analysis workers),
    the broker and the database server, when they run on this host."""
    pids = {name: proc.pid for name, proc in services.procs.items()}
    for name, address in (("rabbitmq", url), ("postgresql", db)):
        pid = listening_pid(urlsplit(address).port or 0)
        if pid is not None:
            pids[name] = pid
    return pids


def cpu(pids: dict[str, int]) -> dict[str, float]:
    return {name: tree_cpu_seconds(pid) for name, pid in pids.items()}


async def burst(publish, clock, n: int) -> tuple[int, float]:
    """`n` jobs (or chains) at once: (how many finished, seconds to the last)."""
    clock.reset()
    t0 = time.perf_counter()
    await asyncio.gather(*(publish() for _ in range(n)))
    ids = list(clock.sent)
    await wait_all(clock, 300)
    done = [clock.charged[i] for i in ids if i in clock.charged]
    return len(done), (max(done) - t0) if done else float("nan")


async def steady(publish, clock, rate: float, seconds: float) -> tuple[int, list[float]]:
    """Jobs (or chains) at `rate` a second for `seconds`: (how many sent, latencies in ms)."""
    clock.reset()
    interval = 1 / rate
    start = time.perf_counter()
    n = 0
    while time.perf_counter() - start < seconds:
        await publish()
        n += 1
        await asyncio.sleep(max(0, start + n * interval - time.perf_counter()))
    ids = list(clock.sent)
    await wait_all(clock, 120)
    return n, [(clock.charged[i] - clock.sent[i]) * 1000 for i in ids if i in clock.charged]


async def analysis_times(doc: bytes, n: int) -> list[float]:
    """The analysis of the same document as job-capture runs it (the isolated analyser, a
    child per document), one after the other, in ms."""
    analyser = IsolatedAnalyser(Limits.from_environment())
    await analyser.analyse(doc)  # the worker's start is not a job's
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        await analyser.analyse(doc)
        times.append((time.perf_counter() - t0) * 1000)
    return times


def spread(ms: list[float]) -> str:
    p50, p90, p99 = (percentile(ms, q) for q in (50, 90, 99))
    return f"p50 {p50:.0f}, p90 {p90:.0f}, p99 {p99:.0f}, max {max(ms):.0f} ms"


def print_hops(clock: Clock, slowest: int = 5) -> None:
    """Each hop's share of the steady latency (from the previous event's arrival at the
    bench to this one's), and the slowest jobs hop by hop with when they were submitted:
    a stall shared by jobs in flight together shows as one hop slow in all of them."""
    steps: dict[str, list[float]] = {hop: [] for hop in HOPS}
    rows = []
    start = min(clock.sent.values(), default=0.0)
    for job_id, sent in clock.sent.items():
        seen = clock.seen.get(job_id, {})
        if not all(hop in seen for hop in HOPS):
            continue
        times = [sent, *(seen[hop] for hop in HOPS)]
        gaps = [(b - a) * 1000 for a, b in itertools.pairwise(times)]
        for hop, gap in zip(HOPS, gaps, strict=True):
            steps[hop].append(gap)
        rows.append((sum(gaps), sent - start, gaps))
    if not rows:
        return
    print(
        "steady hops (ms, from the previous event to this one as the bench saw them): "
        + "; ".join(
            f"{hop} p50 {percentile(ms, 50):.0f} p99 {percentile(ms, 99):.0f}"
            for hop, ms in steps.items()
        )
    )
    # The wall clock of a submission, to line it up with an outside sampler's.
    to_wall = time.time() - time.perf_counter()
    for total, at, gaps in sorted(rows, reverse=True)[:slowest]:
        wall = datetime.fromtimestamp(start + at + to_wall, UTC).strftime("%H:%M:%S.%f")[:-3]
        print(
            f"  slow job submitted at {at:.2f} s ({wall} UTC): {total:.0f} ms = "
            + " + ".join(f"{g:.0f}" for g in gaps)
        )


@dataclass(frozen=True)
class Counted:
    """Where the work a burst caused is counted: the services' vhost (messages each queue
    delivered, from the management API) and their database (transactions committed)."""

    vhosts: Vhosts
    vhost: str
    admin_dsn: str
    database: str

    def deliveries(self) -> dict[str, int]:
        queues = self.vhosts.http.get(f"/api/queues/{self.vhost}").json()
        return {q["name"]: (q.get("message_stats") or {}).get("deliver_get", 0) for q in queues}

    async def commits(self) -> int:
        conn = await asyncpg.connect(self.admin_dsn)
        try:
            await conn.execute("SELECT pg_stat_clear_snapshot()")
            return await conn.fetchval(
                "SELECT xact_commit FROM pg_stat_database WHERE datname = $1", self.database
            )
        finally:
            await conn.close()

    async def settled(self) -> tuple[dict[str, int], int]:
        """The counts once two readings a statistics interval apart agree (the broker's
        lag by its statistics interval; PostgreSQL's backends report within a second)."""
        last = (self.deliveries(), await self.commits())
        while True:
            await asyncio.sleep(6)
            now = (self.deliveries(), await self.commits())
            if now[0] == last[0]:
                return now
            last = now


async def bench(
    url: str,
    bare_url: str,
    pids: dict[str, int],
    burst_n: int,
    rate: float,
    seconds: float,
    counted: Counted,
    hops: bool = False,
) -> None:
    doc = make_pdf(3)
    sender = signed_in_as(url)
    conn = await aio_pika.connect(url)
    bare_conn = await aio_pika.connect(bare_url)
    async with conn, bare_conn:
        ch = await conn.channel(publisher_confirms=True, on_return_raises=True)
        ex = await ch.get_exchange(COMMANDS)
        clock = Clock()
        q = await ch.declare_queue(exclusive=True)
        await q.bind(EVENTS, "job.charged")
        await q.consume(clock.on_event, no_ack=True)

        bare_ch = await bare_conn.channel(publisher_confirms=True)
        bare_clock = BareClock()
        end = await bare_ch.get_queue(bare_chain.queue(bare_chain.HOPS))
        await end.consume(bare_clock.on_end, no_ack=True)

        def job():
            return submit(ex, doc, clock, sender)

        def chain():
            return start_chain(bare_ch.default_exchange, bare_clock, doc)

        # Warm-up: connections, pools, the analysis workers, the caches.
        await burst(job, clock, 20)
        await burst(chain, bare_clock, 20)

        print(f"load average before: {load_average()}")
        done, took = await burst(chain, bare_clock, burst_n)
        bare_rate = done / took
        print(f"bare chain, burst: {done}/{burst_n} in {took:.2f} s = {bare_rate:.1f} chains/s")

        delivered, commits = await counted.settled()
        before = cpu(pids)
        done, took = await burst(job, clock, burst_n)
        used = {name: cpu_s - before[name] for name, cpu_s in cpu(pids).items()}
        jobs_rate = done / took
        print(
            f"Platen, burst: {done}/{burst_n} jobs charged in {took:.2f} s = {jobs_rate:.1f} "
            f"jobs/s through all hops ({jobs_rate / bare_rate:.2f} of the bare chain's rate)"
        )
        per_job = {name: s * 1000 / max(done, 1) for name, s in used.items()}
        print(
            "CPU per job in that burst, ms: "
            + ", ".join(f"{name} {ms:.1f}" for name, ms in per_job.items())
            + f"; total {sum(per_job.values()):.1f}"
        )
        after, commits_after = await counted.settled()
        per_queue = {
            name: (n - delivered.get(name, 0)) / max(done, 1)
            for name, n in sorted(after.items())
            if n > delivered.get(name, 0) and not name.startswith("amq.gen")
        }
        print(
            f"deliveries per job in that burst: {sum(per_queue.values()):.2f} "
            f"({', '.join(f'{name} {n:.2f}' for name, n in per_queue.items())}); "
            f"transactions committed per job: {(commits_after - commits) / max(done, 1):.2f}"
        )

        sent, bare_lat = await steady(chain, bare_clock, rate, seconds)
        print(
            f"bare chain, steady {rate:g}/s for {seconds:g} s: {len(bare_lat)}/{sent}; "
            f"{spread(bare_lat)}"
        )
        if hops:
            # Only now: the burst's CPU figures stay those of the job's own deliveries.
            for hop in HOPS[:-1]:
                await q.bind(EVENTS, hop)
        sent, lat = await steady(job, clock, rate, seconds)
        print(
            f"Platen, steady {rate:g} jobs/s for {seconds:g} s: {len(lat)}/{sent} charged; "
            f"submit -> charged {spread(lat)}"
        )
        if hops:
            print_hops(clock)
        analysed = await analysis_times(doc, max(len(lat), 20))
        print(f"analysis of the same document, one after the other: {spread(analysed)}")
        bound = percentile(bare_lat, 99) + percentile(analysed, 99) + 50
        print(
            f"p99 {percentile(lat, 99):.0f} ms against the goal's bound (bare p99 + analysis "
            f"p99 + 50) {bound:.0f} ms: {'met' if percentile(lat, 99) <= bound else 'NOT met'}"
        )
        print(f"load average after: {load_average()}")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--burst", type=int, default=300)
    p.add_argument("--rate", type=float, default=20)
    p.add_argument("--seconds", type=float, default=15)
    p.add_argument(
        "--batch",
        choices=("on", "off"),
        default="on",
        help="deliveries handled in batches where a service opts in (PLATEN_BATCH)",
    )
    p.add_argument(
        "--hops",
        action="store_true",
        help="in the steady phase, take every event of a job's path and print where the "
        "time went, hop by hop (four more deliveries a job, to the bench's own queue)",
    )
    args = p.parse_args()
    with provide(durable=True) as infra:
        vhosts = Vhosts(infra)
        vhost, url = vhosts.create()
        _, bare_url = vhosts.create()
        db_name, db = asyncio.run(create_database(infra.database_url))
        _, bare_db = asyncio.run(create_database(infra.database_url))
        env = {"PLATEN_LOG_LEVEL": "WARNING", "PLATEN_BATCH": "1" if args.batch == "on" else "0"}
        services = ServiceProcesses(url, db, Path(tempfile.mkdtemp()) / "logs", extra_env=env)
        services.install_topology()
        services.start_all()
        try:
            ctl(url, "status", "--timeout", "60")
            ctl(url, "printer", "add", "lab-1", "--price-per-page", "0.10")
            ctl(url, "user", "add", "bench", "--balance", "1000000")
            pids = processes(infra.amqp_url, infra.database_url, services)
            print(
                f"infrastructure: {infra.source}; services: 4 processes on "
                f"{len(os.sched_getaffinity(0))} cores; batches {args.batch}; 3-page PDFs; "
                f"bare chain: {bare_chain.HOPS} hops, each its own process"
            )
            with bare_chain.BareChain(bare_url, bare_db):
                asyncio.run(
                    bench(
                        url,
                        bare_url,
                        pids,
                        args.burst,
                        args.rate,
                        args.seconds,
                        Counted(vhosts, vhost, infra.database_url, db_name),
                        args.hops,
                    )
                )
        finally:
            services.stop_all()


if __name__ == "__main__":
    main()
