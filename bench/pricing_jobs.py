"""Pricing: how long the domain takes to price a job, and jobs priced per second by the
service's handler against a real PostgreSQL (schedule lookup by capture time, policies of
the printer and its group, the user's groups, the job.priced outbox row), without the
broker.

    .venv/bin/python bench/pricing_jobs.py [--jobs 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import structlog

from platen.db import apply_migrations, create_pool, load_migrations
from platen.events.jobs import JobCaptured, SideGroup
from platen.events.printers import CostModel, PaperRates, Policy
from platen.messaging.handling import apply_in_transaction
from platen.messaging.service import MESSAGING_MIGRATIONS
from platen.pricing import handlers
from platen.pricing.domain import Job, Sides, assess
from platen.pricing.store import Store
from platen.testing.infra import provide
from platen.testing.isolation import create_database

ROOT = Path(__file__).resolve().parents[1]
MIGRATIONS = ROOT / "services/pricing/src/platen/pricing/migrations"
D = Decimal
MODEL = CostModel(
    page=D("0.035"),
    color_page=D("0.25"),
    papers=[PaperRates(paper="A3", grayscale=D("0.07"), color=D("0.50"))],
    duplex_discount=D("20"),
    per_job=D("0.05"),
)
POLICIES = [
    ("printer policy", Policy(max_pages=500, suggest_duplex=True)),
    ("group policy", Policy(color_groups=["staff"], confirm_above_cost=D("5"))),
]


def domain(label: str, job: Job, rounds: int) -> None:
    start = time.perf_counter()
    for _ in range(rounds):
        assess(MODEL, POLICIES, job, printer="lab", user_groups=frozenset({"staff"}))
    per = (time.perf_counter() - start) / rounds
    print(f"domain, {label}: {per * 1e6:8.1f} us a job")


def captured(i: int) -> JobCaptured:
    groups = [
        SideGroup(paper="A4", color=False, count=20),
        SideGroup(paper="A4", color=True, count=1),
    ]
    return JobCaptured(
        job_id=uuid.uuid4(),
        user=f"u{i % 50}",
        printer="lab",
        document_name="d.pdf",
        pages=21,
        copies=1,
        size_bytes=1,
        captured_at=datetime.now(UTC),
        sides=21,
        sheets=21,
        side_groups=groups,
        identity="present",
    )


async def run(pool, handler, message):
    return await apply_in_transaction(pool, "bench", handler, message, store=Store)


async def service(n: int) -> None:
    with provide(durable=True) as infra:
        _, dsn = await create_database(infra.database_url)
        pool = await create_pool(dsn, "pricing", min_size=4, max_size=20)
        async with pool.acquire() as conn:
            await apply_migrations(
                conn,
                "pricing",
                load_migrations("messaging", MESSAGING_MIGRATIONS)
                + load_migrations("pricing", MIGRATIONS),
            )
            # 20 schedule versions, so the lookup by capture time has something to skip.
            for i in range(20):
                await Store(conn).add_schedule("lab", MODEL.model_copy(update={"page": D(i)}))
            await Store(conn).add_schedule("lab", MODEL)
            await Store(conn).set_printer_groups("lab", ["floor"])
            await Store(conn).set_policy("printer", "lab", POLICIES[0][1])
            await Store(conn).set_policy("group", "floor", POLICIES[1][1])
            for i in range(50):
                await Store(conn).set_user_groups(f"u{i}", ["staff"], 1)
        print(f"infrastructure: {infra.source}; {n} jobs per run")
        for concurrency in (1, 8):
            jobs = [captured(i) for i in range(n)]
            start = time.perf_counter()
            for chunk in range(0, n, concurrency):
                await asyncio.gather(
                    *(
                        run(pool, handlers.on_job_captured, j)
                        for j in jobs[chunk : chunk + concurrency]
                    )
                )
            rate = n / (time.perf_counter() - start)
            print(f"handler, concurrency {concurrency}: {rate:7.0f} jobs priced/s")
        await pool.close()


def main(n: int) -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    report = (Sides("A4", False, 20), Sides("A4", True, 1))
    domain("21 sides in 2 groups", Job(report, 1, False), 5000)
    pages = tuple(Sides("A4" if i % 7 else "A3", i % 11 == 0, 1) for i in range(10_000))
    domain("10,000 sides one by one", Job(pages, 3, True), 20)
    asyncio.run(service(n))


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--jobs", type=int, default=2000)
    main(p.parse_args().jobs)
