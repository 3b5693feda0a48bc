"""Notification's start with many desktop users: how soon it consumes, and how long its
identity reconciliation takes in the background (issue 17 item 2, issue 14 goal 4).

On a broker and database of its own (`provide`), notification alone runs as in
production: its own broker identity, the management API configured, so each user's
reconciliation declares the desktop queue and makes the broker user, its limits and its
permissions. `--users` logins are written straight into notification's `desktop_users`
(as the ledger's `user.added` would leave them). For each count, notification is started
twice: the first start creates every queue and broker user, the second finds them there
(every later restart of a site). Each start is timed from the process's launch to its
log's "service started" (consuming: prompts flow from here) and to "identities reconciled".

`--compare REV` also restarts, in turns with this tree's, the notification of git revision
REV (its `services/notification/src` first on the PYTHONPATH; the libraries are this
tree's), `--rounds` times each, after the first start: both find every identity there.

    .venv/bin/python bench/reconcile.py [--users 1000,10000] [--compare 8800ff5 [--rounds 3]]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

from bench.capacity import load_average
from bench.revisions import unpack
from platen.localstack.services import ServiceProcesses
from platen.testing.identities import Identities
from platen.testing.infra import provide
from platen.testing.isolation import Vhosts, create_database

ROOT = Path(__file__).resolve().parent.parent
NOTIFICATION_SOURCES = "services/notification/src"
CONSUMING = "service started"
RECONCILED = "identities reconciled"


async def add_users(database_url: str, first: int, last: int) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            """INSERT INTO notification.desktop_users (login)
               SELECT 'bench-u' || g FROM generate_series($1::int, $2::int) g
               ON CONFLICT DO NOTHING""",
            first,
            last,
        )
    finally:
        await conn.close()


def extract(rev: str, into: Path) -> Path:
    """Notification's sources at git revision `rev`, as a PYTHONPATH entry."""
    return unpack(rev, [NOTIFICATION_SOURCES], into) / NOTIFICATION_SOURCES


def timed_start(services: ServiceProcesses, timeout: float = 1800) -> tuple[float, float]:
    """Start notification; seconds until its log says it consumes, and it reconciled."""
    log = services.log_dir / "notification.log"
    seen = log.read_text() if log.exists() else ""
    started = time.perf_counter()
    services.start("notification")
    consuming = reconciled = None
    new = ""
    while reconciled is None or consuming is None:
        if time.perf_counter() - started > timeout:
            raise RuntimeError("notification did not reconcile in time:\n" + new[-3000:])
        time.sleep(0.05)
        new = log.read_text()[len(seen) :] if log.exists() else ""
        now = time.perf_counter() - started
        if consuming is None and CONSUMING in new:
            consuming = now
        if reconciled is None and RECONCILED in new:
            reconciled = now
    return consuming, reconciled


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--users", default="1000,10000")
    p.add_argument("--compare", metavar="REV", help="also restart notification of git REV")
    p.add_argument("--rounds", type=int, default=3, help="with --compare: restarts of each")
    args = p.parse_args()
    old = extract(args.compare, Path(tempfile.mkdtemp())) if args.compare else None
    with provide(durable=True) as infra:
        vhost, url = Vhosts(infra).create()
        _, db = asyncio.run(create_database(infra.database_url))
        ids = Identities(infra).for_vhost(vhost)
        services = ServiceProcesses(
            url,
            db,
            Path(tempfile.mkdtemp()) / "logs",
            own_env={"notification": {"PLATEN_BROKER_MANAGEMENT_URL": ids.management_url}},
            service_urls=ids.services,
        )
        services.install_topology()
        print(f"infrastructure: {infra.source}")
        timed_start_done = False
        try:
            consuming, reconciled = timed_start(services)  # its migrations, no users
            services.stop("notification")
            print(f"     0 users: consuming after {consuming:.1f} s", flush=True)
            had = 0
            for users in (int(n) for n in args.users.split(",")):
                asyncio.run(add_users(db, had + 1, users))
                had = users
                runs = [("first start (creates)", None), ("restart (all there)", None)]
                if old is not None:
                    runs += [
                        (f"restart, {tree}", path)
                        for _ in range(args.rounds)
                        for tree, path in ((args.compare, old), ("this tree", None))
                    ]
                for label, pythonpath in runs:
                    env = services.own_env["notification"]
                    env.pop("PYTHONPATH", None)
                    if pythonpath is not None:
                        env["PYTHONPATH"] = str(pythonpath)
                    before = load_average()
                    consuming, reconciled = timed_start(services)
                    services.stop("notification")
                    print(
                        f"{users:>6} users, {label:<22} consuming after {consuming:5.1f} s,"
                        f" reconciled after {reconciled:6.1f} s"
                        f" (load average {before} -> {load_average()})",
                        flush=True,
                    )
            timed_start_done = True
        finally:
            services.stop_all()
            if not timed_start_done:
                print(services.log("notification")[-3000:])


if __name__ == "__main__":
    main()
