"""platen-client start-up time and idle memory, in each presentation.

Start-up: from starting the process to its consumer being on the user's desktop queue
(what the broker sees: the client is listening). Idle memory: the process's resident set
(VmRSS) after it has sat connected for a while. The GUI runs on a private Xvfb display,
once without a system tray (the balance window) and once with one (trayer: the tray icon).

    .venv/bin/python bench/client_footprint.py [--runs 5] [--idle 10]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time

import aio_pika

from platen.events.routing import DESKTOP, DESKTOP_REPLIES, desktop_key, desktop_queue
from platen.testing.infra import provide
from platen.testing.isolation import Vhosts
from platen.testing.xvfb import tray_host, xvfb

LOGIN = "bench"


async def declare_queue(url: str) -> None:
    conn = await aio_pika.connect(url)
    async with conn:
        ch = await conn.channel()
        ex = await ch.declare_exchange(DESKTOP, aio_pika.ExchangeType.TOPIC, durable=True)
        q = await ch.declare_queue(desktop_queue(LOGIN), durable=True)
        await q.bind(ex, desktop_key(LOGIN, "#"))
        # Where the client says hello when it connects (nobody answers it here).
        await ch.declare_exchange(DESKTOP_REPLIES, aio_pika.ExchangeType.TOPIC, durable=True)


async def wait_for_consumer(url: str, timeout: float = 30) -> None:
    conn = await aio_pika.connect(url)
    async with conn:
        ch = await conn.channel()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            q = await ch.declare_queue(desktop_queue(LOGIN), passive=True)
            if q.declaration_result.consumer_count:
                return
            await asyncio.sleep(0.005)
        raise RuntimeError("the client never started consuming")


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def one_run(url: str, mode: list[str], idle: float, state: str) -> tuple[float, int]:
    cmd = [sys.executable, "-m", "platen.client", "--user", LOGIN, "--amqp-url", url,
           "--state-dir", state, "--disable-notifications", *mode]  # fmt: skip
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        asyncio.run(wait_for_consumer(url))
        started = time.perf_counter() - start
        time.sleep(idle)
        return started, rss_kib(proc.pid)
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--idle", type=float, default=10.0)
    args = p.parse_args()
    with provide() as infra, xvfb() as display, tempfile.TemporaryDirectory() as state:
        os.environ["DISPLAY"] = display
        vhosts = Vhosts(infra)
        name, url = vhosts.create()
        try:
            asyncio.run(declare_queue(url))
            print(f"{'mode':<10} {'start-up median':>16} {'max':>8} {'idle RSS median':>16}")
            for label, mode in (("--json", ["--json"]), ("--console", ["--console"]),
                                ("GUI (Tk)", []), ("GUI, tray", [])):  # fmt: skip
                tray = tray_host(display) if label == "GUI, tray" else contextlib.nullcontext()
                with tray:
                    runs = [one_run(url, mode, args.idle, state) for _ in range(args.runs)]
                times = [t for t, _ in runs]
                rss = [r for _, r in runs]
                print(
                    f"{label:<10} {statistics.median(times) * 1000:>13.0f} ms "
                    f"{max(times) * 1000:>5.0f} ms {statistics.median(rss) / 1024:>13.1f} MiB",
                    flush=True,
                )
        finally:
            vhosts.delete(name)


if __name__ == "__main__":
    main()
