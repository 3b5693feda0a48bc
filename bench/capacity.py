"""What the benches of prompts and capacity (held_jobs.py, desktops.py, desktop_flood.py)
share: the system started with users who confirm every job, percentiles, and a process
tree's memory and CPU time read from /proc."""

from __future__ import annotations

import asyncio
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank percentile `q` (0 to 100) of `values`: a value that occurred, so
    p99 of 200 samples is the second slowest, not an interpolation."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def spread(ms: list[float]) -> str:
    return (
        f"p50 {percentile(ms, 50):.1f} ms, p99 {percentile(ms, 99):.1f} ms, "
        f"max {max(ms):.1f} ms ({len(ms)} samples)"
    )


def status_kib(status: str, field: str) -> int:
    """A `/proc/PID/status` field in KiB (`VmRSS`, `RssAnon`, ...)."""
    for line in status.splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise KeyError(field)


def stat_fields(stat: str) -> tuple[int, float]:
    """(parent pid, CPU seconds used: user + system) from a `/proc/PID/stat` line. The
    command name (second field) may hold spaces and parentheses: fields are counted from
    the last ')'."""
    rest = stat[stat.rindex(")") + 2 :].split()
    # rest[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
    return int(rest[1]), (int(rest[11]) + int(rest[12])) / CLOCK_TICKS


def tree(pid: int) -> list[int]:
    """`pid` and every process below it (analysis workers, Ghostscript, ...)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid, _ = stat_fields((entry / "stat").read_text())
            except (OSError, ValueError):
                continue  # gone meanwhile
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(children.get(p, []))
    return found


def rss_mib(pids: list[int]) -> float:
    total = 0
    for p in pids:
        try:
            total += status_kib(Path(f"/proc/{p}/status").read_text(), "VmRSS")
        except (OSError, KeyError):
            continue  # a zombie has no VmRSS
    return total / 1024


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for p in pids:
        try:
            total += stat_fields(Path(f"/proc/{p}/stat").read_text())[1]
        except OSError:
            continue
    return total


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) of `pid` and every process below it, with what their
    children that have ended used (a forked analysis child, a PostgreSQL backend that
    closed): fields 14 to 17 of proc(5)."""
    total = 0.0
    for p in tree(pid):
        try:
            stat = Path(f"/proc/{p}/stat").read_text()
        except OSError:
            continue
        rest = stat[stat.rindex(")") + 2 :].split()
        total += sum(int(v) for v in rest[11:15]) / CLOCK_TICKS
    return total


def listening_pid(port: int) -> int | None:
    """The process listening on TCP `port` on this host (a local broker or database), or
    None when it is not ours to see (a container's)."""
    out = subprocess.run(
        ["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True
    ).stdout
    marker = "pid="
    if marker not in out:
        return None
    return int(out.split(marker, 1)[1].split(",", 1)[0])


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def platenctl(url: str, *args: str) -> None:
    env = {"PLATEN_AMQP_URL": url, "PATH": os.environ.get("PATH", "")}
    subprocess.run([sys.executable, "-m", "platen.ctl", *args], check=True, env=env)


@contextmanager
def prompting_system(
    infra, env: dict[str, str], users: tuple[str, ...], balance: str
) -> Iterator[tuple[str, str, object, Path]]:
    """A vhost and a database, the four services as processes on them (with `env`),
    printer lab-1 at 0.10 a page, and `users` with `balance` who confirm every job: (broker
    URL, database URL, the services, their logs' folder). The services stop on the way out."""
    from platen.localstack.services import ServiceProcesses
    from platen.testing.isolation import Vhosts, create_database

    _, url = Vhosts(infra).create()
    _, db = asyncio.run(create_database(infra.database_url))
    logs = Path(tempfile.mkdtemp()) / "logs"
    services = ServiceProcesses(url, db, logs, extra_env=env)
    services.install_topology()
    services.start_all()
    try:
        platenctl(url, "status", "--timeout", "60")
        platenctl(url, "printer", "add", "lab-1", "--price-per-page", "0.10")
        for login in users:
            platenctl(url, "user", "add", login, "--balance", balance)
            platenctl(url, "user", "set", login, "--selection", "confirm")
        time.sleep(2)  # the desktop queues are declared when notification sees the users
        yield url, db, services, logs
    finally:
        services.stop_all()
