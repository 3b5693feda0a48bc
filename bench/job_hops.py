"""Where one job's time goes between the services: every event of a job, timed from its
submission, jobs sent one at a time on an otherwise idle system.

`e2e_jobs.py` times a job from `capture.submit` to `job.charged` only; this one listens to
every event on the events exchange (a queue bound to `#`) and notes when each of a job's
events (by its correlation id, the job's id) first reaches it. Each line is an event in
the order of its median: the median and p90 time from the submission, and the median gap
from the event before it, which is one service's hop: its delivery, its transaction and
commit, and the outbox relay's publication. The analysis of the same document, alone, is
printed beside them (most of the first hop is it). Prints figures; asserts nothing.

    .venv/bin/python bench/job_hops.py [--jobs 40] [--pause 0.1]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aio_pika

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

from bench.capacity import load_average, percentile
from bench.e2e_jobs import Clock, analysis_times, ctl, submit
from platen.events.routing import COMMANDS, EVENTS
from platen.localstack.services import ServiceProcesses
from platen.rpc.client import signed_in_as
from platen.testing.documents import make_pdf
from platen.testing.infra import provide
from platen.testing.isolation import Vhosts, create_database


class Tap(Clock):
    """Every event of every job: when it first arrived, by job id and type."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: dict[str, dict[str, float]] = {}

    async def on_event(self, raw) -> None:
        if raw.correlation_id and raw.type:
            self.seen.setdefault(raw.correlation_id, {}).setdefault(raw.type, time.perf_counter())
        await super().on_event(raw)


async def trace(url: str, jobs: int, pause: float) -> None:
    doc = make_pdf(3)
    sender = signed_in_as(url)
    async with await aio_pika.connect(url) as conn:
        ch = await conn.channel(publisher_confirms=True, on_return_raises=True)
        commands = await ch.get_exchange(COMMANDS)
        tap = Tap()
        q = await ch.declare_queue(exclusive=True)
        await q.bind(EVENTS, "#")
        await q.consume(tap.on_event, no_ack=True)

        async def one() -> None:
            tap.all_charged.clear()
            await submit(commands, doc, tap, sender)
            await asyncio.wait_for(tap.all_charged.wait(), 60)

        for _ in range(5):  # warm-up: connections, pools, the analysis workers
            await one()
        tap.sent.clear()
        print(f"load average before: {load_average()}")
        for _ in range(jobs):
            await one()
            await asyncio.sleep(pause)
        since: dict[str, list[float]] = {}
        for job, sent in tap.sent.items():
            for kind, at in tap.seen.get(job, {}).items():
                since.setdefault(kind, []).append((at - sent) * 1000)
        rows = sorted(since.items(), key=lambda kv: statistics.median(kv[1]))
        print(f"{jobs} jobs of 3 pages, one at a time ({pause:g} s apart); ms from submission:")
        before = 0.0
        for kind, ms in rows:
            median = statistics.median(ms)
            print(
                f"  {kind:<28} median {median:6.1f}  p90 {percentile(ms, 90):6.1f}"
                f"  (+{median - before:5.1f} after the one before; seen for {len(ms)})"
            )
            before = median
        analysed = await analysis_times(doc, 20)
        print(
            f"the analysis of the same document alone: median {statistics.median(analysed):.1f}"
            f" ms, p90 {percentile(analysed, 90):.1f}"
        )
        print(f"load average after: {load_average()}")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--jobs", type=int, default=40)
    p.add_argument(
        "--pause", type=float, default=0.1, help="seconds between one job's charge and the next"
    )
    args = p.parse_args()
    with provide(durable=True) as infra:
        _, url = Vhosts(infra).create()
        _, db = asyncio.run(create_database(infra.database_url))
        env = {"PLATEN_LOG_LEVEL": "WARNING"}
        services = ServiceProcesses(url, db, Path(tempfile.mkdtemp()) / "logs", extra_env=env)
        services.install_topology()
        services.start_all()
        try:
            ctl(url, "status", "--timeout", "60")
            ctl(url, "printer", "add", "lab-1", "--price-per-page", "0.10")
            ctl(url, "user", "add", "bench", "--balance", "1000000")
            asyncio.run(trace(url, args.jobs, args.pause))
        finally:
            services.stop_all()


if __name__ == "__main__":
    main()
