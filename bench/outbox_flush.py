"""The outbox relay's database cost per flush, this tree's beside another checkout's.

A flush as the relay does it when a delivery's transaction has just left one row: the
row written in its own transaction (`outbox.add_rows`), then `OutboxRelay.flush_once`.
The broker is left out on purpose (the publisher here takes the message and returns), so
that what is measured is the relay's own statements: Python's CPU in this process and the
CPU of the PostgreSQL backend serving it (from /proc), per turn (the row's write and its
flush), and the statements a turn sends (BEGIN and COMMIT included: each a round trip).

Each checkout runs this script in its own process (with its own virtualenv's Python, so
its own `platen`), against the same
PostgreSQL (a database of its own each), in turns for `--rounds` rounds.

    .venv/bin/python bench/outbox_flush.py [--against /work/other-checkout] [--flushes 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

from bench.capacity import cpu_seconds, load_average


class _Publisher:
    """Takes every message at once: the broker's part is not what is measured here."""

    async def publish(self, *args, **kwargs) -> None:
        return None

    async def ensure_desktop_queue(self, identity: str) -> None:
        return None


async def child(dsn: str, flushes: int) -> dict:
    from platen.db import apply_migrations, create_pool, load_migrations
    from platen.events.jobs import JobCancelled
    from platen.events.routing import EVENTS
    from platen.messaging import outbox
    from platen.messaging.codec import envelope_for
    from platen.messaging.outbox import OutboxRelay
    from platen.messaging.service import MESSAGING_MIGRATIONS

    pool = await create_pool(dsn, "svc", min_size=1, max_size=1)
    statements: list[str] = []
    async with pool.acquire() as conn:
        await conn.execute("CREATE SCHEMA IF NOT EXISTS svc")
        await apply_migrations(conn, "svc", load_migrations("messaging", MESSAGING_MIGRATIONS))
        backend = await conn.fetchval("SELECT pg_backend_pid()")
    relay = OutboxRelay(pool, _Publisher(), "bench")  # type: ignore[arg-type]

    async def one() -> None:
        event = JobCancelled(
            job_id=uuid.uuid4(), user="bench", printer="lab-1", document_name="a.pdf", reason="x"
        )
        row = outbox.row(event, envelope_for(event, "bench"), exchange=EVENTS, routing_key="x")
        async with pool.acquire() as conn, conn.transaction():
            await outbox.add_rows(conn, [row])
        assert await relay.flush_once() == 1

    for _ in range(50):  # warm-up: prepared statements, caches
        await one()
    async with pool.acquire() as conn:
        conn.add_query_logger(lambda record: statements.append(record.query))
    await relay.flush_once()  # nothing to send: 0
    statements.clear()
    await one()
    per_turn = len(statements)
    cpu0, backend0, t0 = time.process_time(), cpu_seconds([backend]), time.perf_counter()
    for _ in range(flushes):
        await one()
    took = time.perf_counter() - t0
    result = {
        "python_ms": (time.process_time() - cpu0) * 1000 / flushes,  # write + flush
        "backend_ms": (cpu_seconds([backend]) - backend0) * 1000 / flushes,
        "wall_ms": took * 1000 / flushes,
        "statements": per_turn,
    }
    await pool.close()
    return result


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--against", type=Path, help="another checkout (with its .venv) beside this")
    p.add_argument("--flushes", type=int, default=2000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(child(args.child, args.flushes))))
        return

    from platen.testing.infra import provide
    from platen.testing.isolation import create_database

    here = Path(__file__).resolve().parent.parent
    trees = {"this tree": here}
    if args.against:
        trees[str(args.against)] = args.against.resolve()
    with provide(durable=True) as infra:
        dbs = {name: asyncio.run(create_database(infra.database_url))[1] for name in trees}
        print(f"PostgreSQL: {infra.source}; {args.flushes} flushes of one row a turn")
        print(f"load average before: {load_average()}")
        for r in range(args.rounds):
            for name, tree in trees.items():
                out = subprocess.run(
                    # this script, run by that checkout's Python: its `platen` is imported
                    [
                        str(tree / ".venv/bin/python"),
                        __file__,
                        "--against",
                        str(tree),
                        "--flushes",
                        str(args.flushes),
                        "--child",
                        dbs[name],
                    ],
                    check=True,
                    capture_output=True,
                    text=True,
                    cwd=tree,
                ).stdout
                res = json.loads(out.strip().splitlines()[-1])
                print(
                    f"round {r + 1}, {name}: statements a turn {res['statements']}; "
                    f"per turn: Python {res['python_ms']:.3f} ms CPU, PostgreSQL backend "
                    f"{res['backend_ms']:.3f} ms CPU, {res['wall_ms']:.3f} ms wall"
                )
        print(f"load average after: {load_average()}")


if __name__ == "__main__":
    main()
