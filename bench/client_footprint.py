"""platen-client start-up time and idle memory, in each presentation.

Start-up: from starting the process to its consumer being on the user's desktop queue
(what the broker sees: the client is listening). Idle memory: the process's resident set
(VmRSS) after it has sat connected for a while. CPU to start: the CPU time the process had
used when its consumer appeared (less distorted by other work on the machine than the
wall-clock start-up). The GUI runs on a private Xvfb display, once without a system tray
(the balance window) and once with one (trayer: the tray icon).

    .venv/bin/python bench/client_footprint.py [--runs 5] [--idle 10] [--compare REF]

`--compare REF` also runs the client of git revision REF (its `apps/client/src` and
`libs/events/src`, first on `PYTHONPATH`) against the same broker, the two taking turns
run by run, so that both are measured in the same minutes of a shared machine. Both run
from compiled bytecode, this tree's sources first on `PYTHONPATH` too (`tree_env`).
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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


async def timed_start(cmd: list[str], url: str, env: dict[str, str] | None, timeout: float = 30):
    """Start the client; return it and the seconds until its consumer is on the queue. The
    watching connection is opened first, so that its own start is not timed with the
    client's (nor competes with it for the CPU)."""
    conn = await aio_pika.connect(url)
    async with conn:
        ch = await conn.channel()
        start = time.perf_counter()
        proc = launch(cmd, env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            q = await ch.declare_queue(desktop_queue(LOGIN), passive=True)
            if q.declaration_result.consumer_count:
                return proc, time.perf_counter() - start
            await asyncio.sleep(0.005)
        proc.terminate()
        proc.wait(10)
        raise RuntimeError("the client never started consuming")


def launch(cmd: list[str], env: dict[str, str] | None) -> subprocess.Popen:
    # Returns once the child is started (fork and exec), not when it ends.
    return subprocess.Popen(
        cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
    )


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def old_tree(ref: str, into: str) -> dict[str, str]:
    """The client and event contract of git revision `ref`, unpacked in `into`: the
    environment that makes `python -m platen.client` run them."""
    root = Path(__file__).resolve().parent.parent
    archive = subprocess.run(
        ["git", "-C", str(root), "archive", ref, "apps/client/src", "libs/events/src"],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", into], input=archive, check=True)
    return tree_env(Path(into))


def tree_env(root: Path) -> dict[str, str]:
    """The environment that runs the client and event contract of the tree at `root`, first
    on `PYTHONPATH` (this tree's too, so that both clients find their modules alike), from
    compiled bytecode as an installed client does: with PYTHONDONTWRITEBYTECODE set, a
    tree never compiled would be compiled again at every start (an eighth of its start here)."""
    paths = [root / "apps/client/src", root / "libs/events/src"]
    for path in paths:
        compileall.compile_dir(path, quiet=1)
    return {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, paths))}


def cpu_ms(pid: int) -> float:
    """CPU time (user + system) the process has used: what its start cost, whatever else
    the machine was doing meanwhile."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def one_run(
    url: str, mode: list[str], idle: float, state: str, env: dict[str, str] | None
) -> tuple[float, float, int]:
    cmd = [sys.executable, "-m", "platen.client", "--user", LOGIN, "--amqp-url", url,
           "--state-dir", state, "--disable-notifications", *mode]  # fmt: skip
    proc, started = asyncio.run(timed_start(cmd, url, env))
    try:
        cpu = cpu_ms(proc.pid)
        time.sleep(idle)
        return started, cpu, rss_kib(proc.pid)
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--idle", type=float, default=10.0)
    p.add_argument("--compare", metavar="REF", help="Also run the client of this git revision.")
    args = p.parse_args()
    with (
        provide() as infra,
        xvfb() as display,
        tempfile.TemporaryDirectory() as state,
        tempfile.TemporaryDirectory() as old,
    ):
        os.environ["DISPLAY"] = display
        this = tree_env(Path(__file__).resolve().parent.parent)
        clients: dict[str, dict[str, str] | None] = {"this tree": this}
        if args.compare:
            clients = {args.compare: old_tree(args.compare, old), "this tree": this}
        vhosts = Vhosts(infra)
        name, url = vhosts.create()
        try:
            asyncio.run(declare_queue(url))
            for env in clients.values():  # untimed: the files read once are in the page cache
                one_run(url, ["--json"], 0, state, env)
            print(f"load average at the start: {load_average()}")
            print(f"{'mode':<10} {'client':<10} {'start-up median':>16} {'max':>8} "
                  f"{'CPU to start':>13} {'idle RSS median':>16}")  # fmt: skip
            for label, mode in (("--json", ["--json"]), ("--console", ["--console"]),
                                ("GUI (Tk)", []), ("GUI, tray", [])):  # fmt: skip
                runs: dict[str, list[tuple[float, float, int]]] = {c: [] for c in clients}
                tray = tray_host(display) if label == "GUI, tray" else contextlib.nullcontext()
                with tray:
                    for _ in range(args.runs):
                        for client, env in clients.items():  # taking turns
                            runs[client].append(one_run(url, mode, args.idle, state, env))
                for client in clients:
                    times = [t for t, _, _ in runs[client]]
                    cpu = [c for _, c, _ in runs[client]]
                    rss = [r for _, _, r in runs[client]]
                    print(
                        f"{label:<10} {client:<10} {statistics.median(times) * 1000:>13.0f} ms "
                        f"{max(times) * 1000:>5.0f} ms {statistics.median(cpu):>10.0f} ms "
                        f"{statistics.median(rss) / 1024:>13.1f} MiB",
                        flush=True,
                    )
            print(f"load average at the end: {load_average()}")
        finally:
            vhosts.delete(name)


def load_average() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


if __name__ == "__main__":
    main()
