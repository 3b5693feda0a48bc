"""The floor under `e2e_jobs.py`: the same broker and database doing the least a job's
path must do, with no Platen code at all.

A chain of five hops, each its own process (as the services are): it consumes from a
durable quorum queue, commits one PostgreSQL row keyed by the message (so a redelivery
is seen), publishes the next persistent message with publisher confirms, then acks. No
decoding, no validation, no inbox, no outbox, no logging. What a job through Platen costs
beyond this is Platen's own.

One hop: `.venv/bin/python bench/bare_chain.py --hop N AMQP_URL DATABASE_URL` (e2e_jobs.py
starts them).
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
from pathlib import Path

import aio_pika
import asyncpg

from platen.localstack import lifeline

HOPS = 5
PREFETCH = 32  # as the services' (platen.messaging.settings)


def queue(i: int) -> str:
    return f"bare.hop{i}"


async def declare(url: str, database_url: str) -> None:
    """The queues (hop 0 to HOPS: the last is where the bench reads the chain's end) and
    one table per hop."""
    conn = await aio_pika.connect(url)
    async with conn:
        ch = await conn.channel()
        for i in range(HOPS + 1):
            await ch.declare_queue(queue(i), durable=True, arguments={"x-queue-type": "quorum"})
    db = await asyncpg.connect(database_url)
    try:
        for i in range(HOPS):
            await db.execute(f"CREATE TABLE IF NOT EXISTS bare_hop{i} (id text PRIMARY KEY)")
    finally:
        await db.close()


async def hop(i: int, url: str, database_url: str) -> None:
    pool = await asyncpg.create_pool(database_url, min_size=4, max_size=PREFETCH)
    conn = await aio_pika.connect(url)
    ch = await conn.channel(publisher_confirms=True)
    await ch.set_qos(prefetch_count=PREFETCH)
    q = await ch.get_queue(queue(i))
    insert = f"INSERT INTO bare_hop{i} (id) VALUES ($1) ON CONFLICT DO NOTHING"

    async def on_message(raw: aio_pika.abc.AbstractIncomingMessage) -> None:
        async with pool.acquire() as db, db.transaction():
            await db.execute(insert, raw.message_id)
        await ch.default_exchange.publish(
            aio_pika.Message(
                raw.body,
                message_id=raw.message_id,
                correlation_id=raw.correlation_id,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
            routing_key=queue(i + 1),
        )
        await raw.ack()

    await q.consume(on_message)
    print("ready", flush=True)
    await asyncio.Future()


class BareChain:
    """The five hop processes, started on a broker and a database, stopped on exit."""

    def __init__(self, url: str, database_url: str) -> None:
        self.url = url
        self.database_url = database_url
        self.procs: list[subprocess.Popen] = []

    def __enter__(self) -> BareChain:
        asyncio.run(declare(self.url, self.database_url))
        for i in range(HOPS):
            proc = subprocess.Popen(
                [sys.executable, __file__, "--hop", str(i), self.url, self.database_url],
                stdout=subprocess.PIPE,
                text=True,
                start_new_session=True,
            )
            self.procs.append(proc)
            # Killed with the benchmark should it end before __exit__ (no-op unless the
            # benchmark started the watcher: `provide()` does).
            lifeline.watch(proc.pid)
            if proc.stdout.readline().strip() != "ready":
                raise RuntimeError(f"bare hop {i} did not start")
        return self

    def __exit__(self, *exc) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            proc.wait(10)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--hop", type=int, required=True)
    p.add_argument("url")
    p.add_argument("database_url")
    args = p.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    asyncio.run(hop(args.hop, args.url, args.database_url))


if __name__ == "__main__":
    main()
