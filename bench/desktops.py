"""Thousands of desktops connected to one broker node: how fast a prompt reaches its desktop,
and what the broker spends on them (issue 14, goal 4).

Each simulated desktop is the client's own broker code (`platen.client.transport.
Transport`: its connection, its consumer on the user's queue with the client's prefetch,
its publishing channel and the hello it sends on connecting), signed in as its own broker
user with exactly a desktop's permissions, limits and queue (`platen.broker_setup.permissions.
desktop_user`, a durable `desktop.<login>` bound to `user.<login>.#`), as the notification
service sets them up; the identities are loaded in one definitions import instead of
tens of thousands of management calls. `--workers` load-generator processes share the
desktops; they connect in steps (`--levels`), and at each step:

- `--prompts` prompts (a `desktop.job_prompt` as notification sends it: persistent, with
  its TTL, mandatory, publisher confirms) go to desktops picked at random, one every
  `--interval` s, each timed from its publish to the desktop having decoded it;
- the broker's memory, file descriptors and sockets (management API, /api/nodes), the
  time of the connection listing job-capture asks for to see which desktops are where
  (`presence.desktops`: the broker's connection tracking; beside it, the per-vhost list
  with statistics it asked before), and the load generators' memory.

The notification service is not running: the prompts are published by the bench as
notification publishes them (held_jobs.py measures notification's own part).

    .venv/bin/python bench/desktops.py [--levels 1000,2500,5000,10000] [--workers 4]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import multiprocessing
import os
import queue as queues
import random
import sys
import time
import uuid
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import aio_pika
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

from bench.capacity import load_average, rss_mib, spread
from platen.broker_setup import permissions
from platen.events.base import HEADER_VERSION
from platen.events.desktop import JobPrompt
from platen.events.routing import DESKTOP, desktop_key, desktop_queue
from platen.messaging.topology import declare_all
from platen.testing.infra import provide
from platen.testing.isolation import Vhosts

SENT_HEADER = "bench-sent"  # time.monotonic() at publish: one clock for every process


def login(n: int) -> str:
    return f"desk{n:05d}"


def password(name: str) -> str:
    return f"pw-{name}"


def password_hash(secret: str) -> str:
    """RabbitMQ's rabbit_password_hashing_sha256: base64(salt + sha256(salt + password))."""
    salt = os.urandom(4)
    return base64.b64encode(salt + hashlib.sha256(salt + secret.encode()).digest()).decode()


def definitions(vhost: str, names: list[str]) -> dict:
    """Users, permissions, topic permissions, limits, queues and bindings of `names`, as
    the notification service gives each desktop (permissions.desktop_user)."""
    users, perms, topics, queues_, bindings = [], [], [], [], []
    for name in names:
        wanted = permissions.desktop_user(name)
        limits = {"max-connections": wanted.max_connections, "max-channels": wanted.max_channels}
        users.append({
            "name": name,
            "password_hash": password_hash(password(name)),
            "hashing_algorithm": "rabbit_password_hashing_sha256",
            "tags": [],
            "limits": limits,
        })  # fmt: skip
        perms.append({
            "user": name,
            "vhost": vhost,
            "configure": wanted.configure,
            "write": wanted.write,
            "read": wanted.read,
        })  # fmt: skip
        topics += [{"user": name, "vhost": vhost, **asdict(t)} for t in wanted.topics]
        queue = desktop_queue(name)
        queues_.append({
            "name": queue, "vhost": vhost, "durable": True, "auto_delete": False, "arguments": {}
        })  # fmt: skip
        bindings.append({
            "source": DESKTOP,
            "vhost": vhost,
            "destination": queue,
            "destination_type": "queue",
            "routing_key": desktop_key(name, "#"),
            "arguments": {},
        })  # fmt: skip
    return {
        "users": users,
        "permissions": perms,
        "topic_permissions": topics,
        "queues": queues_,
        "bindings": bindings,
    }


def url_of(base: str, name: str) -> str:
    parts = urlsplit(base)
    netloc = f"{quote(name, safe='')}:{quote(password(name), safe='')}@{parts.hostname}"
    return urlunsplit(parts._replace(netloc=f"{netloc}:{parts.port}"))


# ----------------------------------------------------------------- load generator


def worker(base_url: str, names: list[str], commands, reports) -> None:
    asyncio.run(_worker(base_url, names, commands, reports))


async def _worker(base_url: str, names: list[str], commands, reports) -> None:
    from platen.client.transport import Transport

    connected: set[str] = set()
    problems: list[str] = []
    transports = []
    loop = asyncio.get_running_loop()

    def status_of(name: str):
        def status(state: str, detail: str) -> None:
            if state == "connected":
                connected.add(name)
            else:
                connected.discard(name)
                problems.append(f"{name}: {state}: {detail}"[:300])

        return status

    async def on_message(delivery) -> None:
        raw = delivery.raw
        # By its wire type: the client decodes into its own copy of the desktop contract
        # (platen.client.contract), not the events library's classes.
        if raw.type == JobPrompt.message_type:
            sent = (raw.headers or {}).get(SENT_HEADER)
            reports.put(("prompt", (time.monotonic() - float(sent)) * 1000))
        await delivery.ack()

    started = 0
    wanted = 0
    while True:
        try:
            command = await loop.run_in_executor(None, commands.get, True, 1.0)
        except queues.Empty:
            command = None
        if command == "stop":
            break
        if isinstance(command, int):
            wanted = min(command, len(names))
        # Connect in small waves: a desktop fleet logs in over minutes, not in one instant.
        while started < wanted and started - len(connected) < 50:
            name = names[started]
            t = Transport(
                url_of(base_url, name),
                name,
                on_message,
                status_of(name),
                # A prompt the client could not read is a broken bench, not a slow one.
                on_unreadable=lambda text, name=name: reports.put(("unreadable", name, text)),
            )
            transports.append(asyncio.create_task(t.run()))
            started += 1
        reports.put(("state", os.getpid(), len(connected), started, problems[-3:]))
        problems.clear()
    for task in transports:
        task.cancel()
    await asyncio.gather(*transports, return_exceptions=True)


# ----------------------------------------------------------------------- the bench


# A prompt's body as notification sends it (a confirmation, three sides, no accounts to
# choose from); checked against the contract once, before any is sent.
PROMPT_BODY = (
    '{"job_id": "%s", "kind": "confirm", "document_name": "report.pdf", "printer": "lab-1",'
    ' "sides": 3, "color_sides": 1, "grayscale_sides": 2, "copies": 1, "duplex": false,'
    ' "cost": "0.40", "accounts": [], "allow_pin": false, "expires_at": "%s", "messages": []}'
)
PROMPT_TTL_MS = 600_000


def prompt_body(job_id: uuid.UUID) -> bytes:
    expires = datetime.now(UTC) + timedelta(milliseconds=PROMPT_TTL_MS)
    return (PROMPT_BODY % (job_id, expires.isoformat())).encode()


async def send_prompts(url: str, names: list[str], n: int, interval: float) -> None:
    conn = await aio_pika.connect(url)
    async with conn:
        channel = await conn.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(DESKTOP)
        JobPrompt.model_validate_json(prompt_body(uuid.uuid4()))  # still the contract's
        for name in random.sample(names, min(n, len(names))):
            job_id = uuid.uuid4()
            message = aio_pika.Message(
                prompt_body(job_id),
                type=JobPrompt.message_type,
                message_id=str(uuid.uuid4()),
                correlation_id=str(job_id),
                headers={HEADER_VERSION: JobPrompt.schema_version, SENT_HEADER: time.monotonic()},
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                expiration=PROMPT_TTL_MS / 1000,
                timestamp=datetime.now(UTC),
            )
            key = desktop_key(name, JobPrompt.desktop_kind)
            await exchange.publish(message, routing_key=key, mandatory=True)
            await asyncio.sleep(interval)


def broker_figures(http: httpx.Client, vhost: str) -> str:
    try:
        return _broker_figures(http, vhost)
    except httpx.HTTPError as exc:
        # Itself a figure: the management API's statistics of thousands of connections
        # cost the broker, and on a loaded machine they come late.
        return f"the management API did not answer in {http.timeout.read:.0f} s ({exc!r})"


def _broker_figures(http: httpx.Client, vhost: str) -> str:
    node = http.get("/api/nodes").json()[0]
    memory = http.get(f"/api/nodes/{quote(node['name'], safe='')}/memory").json()["memory"]
    conns = sum(memory.get(k, 0) for k in memory if k.startswith("connection_"))
    listing, stats_listing = [], []
    for _ in range(3):
        # What presence asks now (`BrokerAdmin.peers`: the connection tracking), and the
        # per-vhost list with statistics it asked before, for comparison.
        started = time.perf_counter()
        r = http.get("/api/connections", params={"disable_stats": "true"})
        listing.append((time.perf_counter() - started) * 1000)
        r.raise_for_status()
        started = time.perf_counter()
        http.get(
            f"/api/vhosts/{quote(vhost, safe='')}/connections",
            params={"columns": "user,peer_host,vhost"},
        ).raise_for_status()
        stats_listing.append((time.perf_counter() - started) * 1000)
    return (
        f"broker memory {node['mem_used'] / 2**20:.0f} MiB (connections {conns / 2**20:.0f} "
        f"MiB, queues {memory.get('queue_procs', 0) / 2**20:.0f} MiB), "
        f"fds {node['fd_used']}/{node['fd_total']}, sockets {node['sockets_used']}/"
        f"{node['sockets_total']}, Erlang processes {node['proc_used']}; "
        f"connection listing (presence) {min(listing):.0f} to {max(listing):.0f} ms "
        f"for {len(r.json())} connections (with statistics, as before: "
        f"{min(stats_listing):.0f} to {max(stats_listing):.0f} ms)"
    )


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--levels", default="1000,2500,5000,10000")
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--prompts", type=int, default=200)
    p.add_argument("--interval", type=float, default=0.05)
    p.add_argument("--stall", type=float, default=120, help="Give up a level after this long.")
    p.add_argument(
        "--statistics-interval-ms",
        type=int,
        default=5000,
        help="The broker's management statistics interval: RabbitMQ's default (5000), as a"
        " deployment runs it; the test brokers use 1000.",
    )
    args = p.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    names = [login(n) for n in range(max(levels))]
    spawn = multiprocessing.get_context("spawn")
    with provide(statistics_interval_ms=args.statistics_interval_ms, durable=True) as infra:
        vhosts = Vhosts(infra)
        vhost, url = vhosts.create()
        http = vhosts.http
        http.timeout = httpx.Timeout(120)  # thousands of connections slow the management API
        workers = []
        try:
            asyncio.run(declare_all(url))
            started = time.perf_counter()
            for i in range(0, len(names), 1000):  # the management API limits a body's size
                r = http.post("/api/definitions", json=definitions(vhost, names[i : i + 1000]))
                if r.is_error:
                    raise RuntimeError(f"definitions refused: {r.status_code} {r.text[:500]}")
            limits = http.get(f"/api/user-limits/{names[0]}").json()
            print(f"infrastructure: {infra.source}; {len(names)} desktop identities and queues"
                  f" loaded in {time.perf_counter() - started:.0f} s; a desktop's limits as"
                  f" loaded: {limits[0]['value'] if limits else 'none'}; management statistics"
                  f" every {args.statistics_interval_ms} ms"
                  f"{'' if infra.source != 'environment' else ' (if the broker is ours)'}",
                  flush=True)  # fmt: skip
            reports = spawn.Queue()
            shares = [names[i :: args.workers] for i in range(args.workers)]
            commands = [spawn.Queue() for _ in shares]
            for share, box in zip(shares, commands, strict=True):
                proc = spawn.Process(target=worker, args=(url, share, box, reports))
                proc.start()
                workers.append(proc)
            states: dict[int, tuple[int, int, list[str]]] = {}
            for level in levels:
                for i, box in enumerate(commands):
                    box.put(len(range(i, level, args.workers)))  # share i: names[i::workers]
                began, last, best = time.perf_counter(), time.perf_counter(), 0
                while True:
                    kind, *rest = reports.get()
                    if kind != "state":
                        continue
                    pid, up, tried, problems = rest
                    states[pid] = (up, tried, problems)
                    total = sum(s[0] for s in states.values())
                    if total > best:
                        best, last = total, time.perf_counter()
                    for problem in problems:
                        print(f"  {problem}", flush=True)
                    if total >= level or time.perf_counter() - last > args.stall:
                        break
                took = time.perf_counter() - began
                print(f"\n== {total} desktops connected (wanted {level}) after {took:.0f} s,"
                      f" load average {load_average()}", flush=True)  # fmt: skip
                if total < level:
                    print("stopped: no more desktops could connect (see the problems above)")
                    break
                time.sleep(10)  # settled: connection storms over
                print(broker_figures(http, vhost))
                print(f"load generators: {rss_mib([w.pid for w in workers]):.0f} MiB"
                      f" for {total} desktops", flush=True)  # fmt: skip
                connected = names[:level]
                asyncio.run(send_prompts(url, connected, args.prompts, args.interval))
                ms = []
                deadline = time.perf_counter() + 60
                while len(ms) < min(args.prompts, level) and time.perf_counter() < deadline:
                    try:
                        kind, *rest = reports.get(timeout=1)
                    except queues.Empty:
                        continue
                    if kind == "prompt":
                        ms.append(rest[0])
                    elif kind == "unreadable":
                        print(f"  {rest[0]}: {rest[1]}"[:400], flush=True)
                got = spread(ms) if ms else "none arrived"
                print(f"publish -> prompt decoded on its desktop: {got}; load average"
                      f" {load_average()}", flush=True)  # fmt: skip
        finally:
            for box in commands if workers else []:
                box.put("stop")
            for proc in workers:
                proc.join(60)
                if proc.is_alive():
                    proc.kill()
            # Thousands of queues and users take the broker a while to delete.
            http.timeout = httpx.Timeout(900)
            try:
                vhosts.delete(vhost)
                http.post("/api/users/bulk-delete", json={"users": names})
            except httpx.HTTPError as exc:
                print(f"clean-up not finished: {exc!r}")


if __name__ == "__main__":
    main()
