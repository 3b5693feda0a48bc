"""End-to-end job throughput and latency: capture.submit -> ... -> job.charged.

Starts RabbitMQ, PostgreSQL (local binaries, or PLATEN_TEST_* from the environment) and the
four services as processes, then:
1. burst: submits N jobs at once and reports jobs per second through all hops;
2. steady: submits jobs at a fixed rate and reports the latency from submit to
   `job.charged` (p50, p90, p99, max).
Prints the figures; does not assert anything (the machine is shared and noisy).

    .venv/bin/python bench/e2e_jobs.py [--burst 300] [--rate 20] [--seconds 15]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import aio_pika

from platen.events.base import HEADER_VERSION
from platen.events.jobs import SubmitJob
from platen.events.registry import encode
from platen.events.routing import COMMANDS, EVENTS
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


class Clock:
    """Submit times and charge times per job id."""

    def __init__(self) -> None:
        self.sent: dict[str, float] = {}
        self.charged: dict[str, float] = {}
        self.all_charged = asyncio.Event()

    def reset(self) -> None:
        self.sent.clear()
        self.charged.clear()
        self.all_charged.clear()

    async def on_event(self, raw) -> None:
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


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


async def bench(url: str, burst: int, rate: float, seconds: float) -> None:
    doc = make_pdf(3)
    sender = signed_in_as(url)
    conn = await aio_pika.connect(url)
    async with conn:
        ch = await conn.channel(publisher_confirms=True, on_return_raises=True)
        ex = await ch.get_exchange(COMMANDS)
        clock = Clock()
        q = await ch.declare_queue(exclusive=True)
        await q.bind(EVENTS, "job.charged")
        await q.consume(clock.on_event, no_ack=True)

        # warm-up
        await asyncio.gather(*(submit(ex, doc, clock, sender) for _ in range(20)))
        await wait_all(clock, 60)
        clock.reset()

        t0 = time.perf_counter()
        await asyncio.gather(*(submit(ex, doc, clock, sender) for _ in range(burst)))
        ids = list(clock.sent)
        await wait_all(clock, 300)
        done = [clock.charged[i] for i in ids if i in clock.charged]
        elapsed = max(done) - t0
        print(
            f"burst: {len(done)}/{burst} jobs charged in {elapsed:.2f}s "
            f"= {len(done) / elapsed:.1f} jobs/s through all hops"
        )

        clock.reset()
        interval = 1 / rate
        start = time.perf_counter()
        n = 0
        while time.perf_counter() - start < seconds:
            await submit(ex, doc, clock, sender)
            n += 1
            await asyncio.sleep(max(0, start + n * interval - time.perf_counter()))
        ids = list(clock.sent)
        await wait_all(clock, 120)
        lat = [(clock.charged[i] - clock.sent[i]) * 1000 for i in ids if i in clock.charged]
        print(
            f"steady {rate:g} jobs/s for {seconds:g}s: {len(lat)}/{len(ids)} charged; "
            f"submit->charged ms p50 {statistics.median(lat):.0f}, p90 {pct(lat, 90):.0f}, "
            f"p99 {pct(lat, 99):.0f}, max {max(lat):.0f}"
        )


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--burst", type=int, default=300)
    p.add_argument("--rate", type=float, default=20)
    p.add_argument("--seconds", type=float, default=15)
    args = p.parse_args()
    with provide() as infra:
        vhosts = Vhosts(infra)
        _, url = vhosts.create()
        _, db = asyncio.run(create_database(infra.database_url))
        services = ServiceProcesses(
            url, db, Path(tempfile.mkdtemp()) / "logs", extra_env={"PLATEN_LOG_LEVEL": "WARNING"}
        )
        services.install_topology()
        services.start_all()
        try:
            ctl(url, "status", "--timeout", "60")
            ctl(url, "printer", "add", "lab-1", "--price-per-page", "0.10")
            ctl(url, "user", "add", "bench", "--balance", "1000000")
            print(
                f"infrastructure: {infra.source}; services: 4 processes on "
                f"{len(os.sched_getaffinity(0))} cores"
            )
            asyncio.run(bench(url, args.burst, args.rate, args.seconds))
        finally:
            services.stop_all()


if __name__ == "__main__":
    main()
