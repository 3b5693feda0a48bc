"""Does one desktop flooding answers slow another user's prompt?

Starts RabbitMQ, PostgreSQL and the four services as processes (as e2e_jobs.py does),
then measures how long alice's prompt takes, from her job's `capture.submit` to the
`job_prompt` in her desktop queue, for `--prompts` jobs one after another:
1. quiet: nobody else is doing anything;
2. flood: meanwhile mallory's desktop sends answers at `--flood-rate` a second.
With `--no-limit` the services run with the answer limit out of the way (a burst of a
million), to show what the limit buys.

Conditions: every program signs in as the vhost's one administrator, so replies carry no
checked `user_id` (PLATEN_REQUIRE_REPLY_USER_ID=0) and the broker's per-desktop limits
are not in play: this measures the notification service's token bucket alone.

    .venv/bin/python bench/desktop_flood.py [--prompts 20] [--flood-rate 100] [--no-limit]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import multiprocessing
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import aio_pika

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

from bench.capacity import prompting_system
from platen.events.base import HEADER_VERSION
from platen.events.desktop import JobAnswer
from platen.events.jobs import SubmitJob
from platen.events.registry import encode
from platen.events.routing import COMMANDS, DESKTOP_REPLIES, desktop_key, desktop_queue
from platen.rpc.client import signed_in_as
from platen.testing.documents import make_pdf
from platen.testing.infra import provide


def message(body: bytes, kind: str, **properties) -> aio_pika.Message:
    return aio_pika.Message(
        body,
        type=kind,
        message_id=str(uuid.uuid4()),
        headers={HEADER_VERSION: 1},
        timestamp=datetime.now(UTC),
        **properties,
    )


class Desktop:
    """A user's desktop queue, read as the client reads it; when each prompt arrived."""

    def __init__(self) -> None:
        self.prompted: dict[str, float] = {}
        self.arrived = asyncio.Event()

    async def on_message(self, raw) -> None:
        if raw.type == "desktop.job_prompt":
            self.prompted[raw.correlation_id] = time.perf_counter()
            self.arrived.set()

    async def wait_for(self, job_id: str) -> float:
        while job_id not in self.prompted:
            self.arrived.clear()
            await self.arrived.wait()
        return self.prompted[job_id]


async def read_alices_desktop(channel, desktop: Desktop) -> None:
    queue = await channel.get_queue(desktop_queue("alice"))
    await queue.consume(desktop.on_message, no_ack=True)


async def prompt_times(channel, url: str, desktop: Desktop, n: int) -> list[float]:
    """Submit `n` of alice's jobs one after another; ms from submit to her prompt each."""
    commands = await channel.get_exchange(COMMANDS)
    document = base64.b64encode(make_pdf(1))
    times = []
    for _ in range(n):
        job = SubmitJob(
            job_id=uuid.uuid4(),
            user="alice",
            printer="lab-1",
            document_name="a.pdf",
            document=document,
        )
        sent = time.perf_counter()
        await commands.publish(
            message(encode(job), job.message_type, user_id=signed_in_as(url)),
            routing_key="capture.submit",
        )
        times.append((await desktop.wait_for(str(job.job_id)) - sent) * 1000)
    return times


async def flood(url: str, rate: float, stop) -> None:
    """Mallory's answers (to a job of hers) at `rate` a second until `stop` is set."""
    conn = await aio_pika.connect(url)
    async with conn:
        replies = await (await conn.channel()).get_exchange(DESKTOP_REPLIES)
        body = encode(JobAnswer(job_id=uuid.uuid4(), user="mallory", action="print"))
        start, sent = time.perf_counter(), 0
        while not stop.is_set():
            await replies.publish(
                message(body, JobAnswer.message_type), routing_key=desktop_key("mallory", "answer")
            )
            sent += 1
            await asyncio.sleep(max(0.0, start + sent / rate - time.perf_counter()))
    print(f"mallory sent {sent} answers in {time.perf_counter() - start:.1f}s")


def flood_process(url: str, rate: float, stop) -> None:
    # A process of its own, as a desktop is: the flood must not slow the measuring loop.
    asyncio.run(flood(url, rate, stop))


def figures(label: str, ms: list[float]) -> str:
    ms = sorted(ms)
    p90 = ms[min(len(ms) - 1, round(0.9 * (len(ms) - 1)))]
    return (
        f"{label}: {len(ms)} prompts, submit->prompt ms p50 {statistics.median(ms):.0f}, "
        f"p90 {p90:.0f}, max {ms[-1]:.0f}"
    )


async def bench(url: str, prompts: int, rate: float) -> None:
    conn = await aio_pika.connect(url)
    async with conn:
        channel = await conn.channel()
        desktop = Desktop()
        await read_alices_desktop(channel, desktop)
        await prompt_times(channel, url, desktop, 3)  # warm-up
        print(figures("quiet", await prompt_times(channel, url, desktop, prompts)))
        # Spawned, not forked: a forked child would hold this process's lifeline pipe
        # open, so a benchmark killed mid-run would leave its servers running.
        spawn = multiprocessing.get_context("spawn")
        stop = spawn.Event()
        flooding = spawn.Process(target=flood_process, args=(url, rate, stop))
        flooding.start()
        await asyncio.sleep(3.0)  # the flood under way, the limit reached
        during = await prompt_times(channel, url, desktop, prompts)
        stop.set()
        flooding.join()
        print(figures(f"flood at {rate:g} answers/s", during))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--prompts", type=int, default=20)
    p.add_argument("--flood-rate", type=float, default=100)
    p.add_argument("--no-limit", action="store_true", help="Run without the answer limit.")
    args = p.parse_args()
    env = {"PLATEN_LOG_LEVEL": "WARNING", "PLATEN_REQUIRE_REPLY_USER_ID": "0"}
    if args.no_limit:
        env["PLATEN_ANSWER_BURST"] = "1000000"
    with provide(durable=True) as infra:
        with prompting_system(infra, env, ("alice", "mallory"), "1000") as (url, _, _, logs):
            limit = "off" if args.no_limit else "on (burst 30, 2 answers/s per login)"
            print(f"infrastructure: {infra.source}; answer limit {limit}")
            asyncio.run(bench(url, args.prompts, args.flood_rate))
        dropped = (logs / "notification.log").read_text().count('"answer dropped"')
        print(f"answers dropped by notification: {dropped}")


if __name__ == "__main__":
    main()
