"""Hostile documents against job-capture's isolated analysis, and normal jobs meanwhile.

Runs job-capture's `on_submit` as its dispatcher does (the analysis before the delivery's
transaction, `apply_in_transaction`) against a real PostgreSQL, with the analysis limits
of `Limits.from_environment()` except the deadline (`--deadline`, 10 s by default, so the
run takes a minute rather than the production default's several):

1. time to deny each document of the hostile corpus (services/job-capture/tests/hostile.py),
   one at a time on an idle machine;
2. normal jobs (1- and 3-page PDFs from 4 users, `--rate` a second for `--seconds`):
   submit -> recorded, p50/p99, before the attack and during it (2 attackers, each sending
   the whole corpus again and again, 4 documents in flight each);
3. peak memory: this process (the service side) and the largest analysis child
   (Ghostscript included), from getrusage;
4. the fixed cost of isolation: a 1-page PDF analysed in the service process (as before)
   and in a worker child, median of 20, and the CPU both spend per document.

    .venv/bin/python bench/hostile_analysis.py [--deadline 10] [--rate 1] [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import importlib.util
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import structlog

from platen.job_capture import analysis, isolation
from platen.job_capture.isolation import IsolatedAnalyser, Limits
from platen.testing.databases import service_pool
from platen.testing.documents import make_pdf
from platen.testing.infra import provide
from platen.testing.isolation import create_database

ROOT = Path(__file__).resolve().parents[1]
CAPTURE = ROOT / "services/job-capture"
MIGRATIONS = CAPTURE / "src/platen/job_capture/migrations"


def load(name: str, path: str):
    """A module of job-capture's tests (the corpus, the submission as CUPS sends it)."""
    spec = importlib.util.spec_from_file_location(name, CAPTURE / "tests" / path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


hostile = load("hostile", "hostile.py")
capture_db = load("capture_db", "integration/test_capture_db.py")


def load_corpus() -> dict[str, bytes]:
    return {name: make() for name, make in hostile.CASES.items()}


async def submit(pool, user: str, document: bytes) -> tuple[float, str]:
    """Seconds from submit to the job recorded, and its state."""
    start = time.perf_counter()
    job_id = await capture_db.submit(pool, document, user=user)
    elapsed = time.perf_counter() - start
    async with pool.acquire() as conn:
        return elapsed, await conn.fetchval("SELECT state FROM jobs WHERE job_id = $1", job_id)


async def normal_stream(pool, rate: float, seconds: float) -> list[float]:
    documents = [make_pdf(1), make_pdf(3)]
    tasks = []
    for n in range(int(rate * seconds)):
        user = f"user{n % 4}"
        tasks.append(asyncio.create_task(submit(pool, user, documents[n % 2])))
        await asyncio.sleep(1 / rate)
    results = await asyncio.gather(*tasks)
    assert all(state == "captured" for _, state in results), results
    return [elapsed for elapsed, _ in results]


async def attacker(pool, user: str, corpus: dict[str, bytes], stop: asyncio.Event) -> int:
    async def one_lane(lane: int) -> int:
        sent = 0
        documents = list(corpus.values())
        while not stop.is_set():
            _, state = await submit(pool, user, documents[(sent + lane) % len(documents)])
            assert state == "denied", state
            sent += 1
        return sent

    return sum(await asyncio.gather(*(one_lane(lane) for lane in range(4))))


def cpu_seconds() -> float:
    """CPU of this process and of every process it or its children ran and reaped, plus
    the workers' parent (alive, so not in RUSAGE_CHILDREN): from /proc."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    server = isolation._default._server if isolation._default else None
    if server is not None:
        with open(f"/proc/{server.process.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        # utime, stime, cutime, cstime (the parent's reaped children: every child)
        total += sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    return total


def figures(name: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[max(0, round(len(ordered) * 0.99) - 1)]
    return (
        f"{name}: n={len(ordered)} p50 {statistics.median(ordered) * 1000:.0f} ms,"
        f" p99 {p99 * 1000:.0f} ms, max {ordered[-1] * 1000:.0f} ms"
    )


async def run(deadline: float, rate: float, seconds: float) -> None:
    limits = dataclasses.replace(Limits.from_environment(), timeout=deadline)
    isolation._default = IsolatedAnalyser(limits)
    print(
        f"limits: deadline {deadline:g} s, memory {limits.memory_bytes // 2**20} MB,"
        f" {limits.workers} workers, {limits.workers_per_owner} per user"
    )
    corpus = load_corpus()

    single = make_pdf(1)
    await isolation._default.analyse(single)  # the workers' parent started
    inline, isolated = [], []
    for _ in range(20):
        start = time.perf_counter()
        analysis.analyse(single)
        inline.append(time.perf_counter() - start)
        start = time.perf_counter()
        await isolation._default.analyse(single)
        isolated.append(time.perf_counter() - start)
    print(
        f"1-page PDF, median of 20: in the service process {statistics.median(inline) * 1000:.0f}"
        f" ms, in an isolated worker {statistics.median(isolated) * 1000:.0f} ms"
    )
    cpu = []
    for runner in ("inline", "isolated"):
        before = cpu_seconds()
        for _ in range(20):
            if runner == "inline":
                analysis.analyse(single)
            else:
                await isolation._default.analyse(single)
        cpu.append((cpu_seconds() - before) / 20 * 1000)
    print(
        f"CPU per 1-page PDF, every process (service, worker parent, child, Ghostscript):"
        f" in the service process {cpu[0]:.0f} ms, isolated {cpu[1]:.0f} ms"
    )

    with provide(durable=True) as infra:
        _, dsn = await create_database(infra.database_url)
        async with service_pool(dsn, "job-capture", "job_capture", MIGRATIONS) as pool:
            await attack(pool, infra.source, corpus, rate, seconds)

    this = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    server = isolation._default._server
    workers = (server.peak_kb if server else 0) / 1024
    print(
        f"peak memory: this process (the service side) {this:.0f} MB;"
        f" largest analysis (a child, Ghostscript included) {workers:.0f} MB"
    )


async def attack(pool, source: str, corpus: dict[str, bytes], rate: float, seconds: float):
    print(f"infrastructure: {source}")
    print("time to deny, one at a time:")
    for name, document in corpus.items():
        elapsed, state = await submit(pool, "mallory", document)
        async with pool.acquire() as conn:
            reason = await conn.fetchval(
                "SELECT reason FROM jobs ORDER BY submitted_at DESC LIMIT 1"
            )
        print(f"  {name} ({len(document)} bytes): {state} in {elapsed:.2f} s: {reason}")

    before = await normal_stream(pool, rate, seconds)
    print(figures(f"normal jobs at {rate:g}/s, no attack", before))
    stop = asyncio.Event()
    attacks = [
        asyncio.create_task(attacker(pool, user, corpus, stop)) for user in ("eve", "mallory")
    ]
    await asyncio.sleep(1)
    during = await normal_stream(pool, rate, seconds)
    stop.set()
    denied = sum(await asyncio.gather(*attacks))
    print(figures(f"normal jobs at {rate:g}/s, during the attack", during))
    print(f"hostile documents denied during the run: {denied}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for name, default in (("deadline", 10.0), ("rate", 1.0), ("seconds", 20.0)):
        parser.add_argument(f"--{name}", type=float, default=default)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    asyncio.run(run(args.deadline, args.rate, args.seconds))


if __name__ == "__main__":
    sys.exit(main())
