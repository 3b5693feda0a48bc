"""A RabbitMQ and a PostgreSQL of one's own, to stop, freeze and start again.

The tests' shared broker and database serve every test on a worker, so an outage must not
happen to them. The outage tests (tests/e2e/test_long_outages.py) and bench/outage.py take
a private pair from here instead: local processes in one folder, as `local.py`'s tier
starts them, with the same ports and data across a stop and a start, as a restarted server
keeps its address and its disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from platen.localstack import lifeline
from platen.localstack.servers import PG_BIN, LocalPostgres, LocalRabbitMQ
from platen.localstack.services import Launcher, ServiceProcesses, run_module
from platen.localstack.tls import make_test_ca
from platen.testing.identities import Identities, VhostIdentities
from platen.testing.infra import Infra
from platen.testing.isolation import Vhosts, create_database


@dataclass
class PrivateStack:
    """The private broker and database, and the outages that can be done to them."""

    folder: Path
    rabbit: LocalRabbitMQ
    postgres: LocalPostgres

    @property
    def infra(self) -> Infra:
        return Infra(
            self.rabbit.amqp_url,
            self.rabbit.management_url,
            self.postgres.admin_dsn,
            "private local binaries",
            amqps_url=self.rabbit.amqps_url,
            read_broker_log=lambda: self.rabbit.log_file.read_text(errors="replace"),
            restart_broker=self.rabbit.restart,
        )

    def stop_broker(self) -> None:
        """Stop the broker's process (every connection drops, nothing answers on its
        ports) until `start_broker`."""
        self.rabbit.stop()

    def start_broker(self) -> None:
        """Start it again on the same ports and data: its queues, users and messages come
        back from disk."""
        self.rabbit.start(timeout=120)

    def _broker_group(self) -> int:
        if self.rabbit.proc is None or self.rabbit.proc.poll() is not None:
            raise RuntimeError("the private broker is not running")
        # The server was started in a session of its own: its process group holds the
        # Erlang VM and its helpers, and not the shared port mapper (epmd detaches).
        return os.getpgid(self.rabbit.proc.pid)

    def freeze_broker(self) -> None:
        """SIGSTOP the broker: its connections stay open but nothing answers, as a broker
        that hangs (swapping, a stuck disk) looks to its clients. Returns once every thread
        of the broker has stopped: the kernel hands a process's SIGSTOP to one of its
        threads, and until that thread runs (a busy machine may not run it for a while,
        nor at all while it waits on the disk) the others go on answering."""
        group = self._broker_group()
        os.killpg(group, signal.SIGSTOP)
        deadline = time.monotonic() + 30
        while running := _running_threads(group):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the broker's threads {running} did not stop within 30 s")
            time.sleep(0.01)

    def thaw_broker(self) -> None:
        os.killpg(self._broker_group(), signal.SIGCONT)

    def stop_database(self) -> None:
        """`pg_ctl stop -m fast`: every session is ended and the server goes away."""
        argv = [str(PG_BIN / "pg_ctl"), "stop", "-D", str(self.postgres.folder / "data")]
        argv += ["-m", "fast", "-w"]
        if os.geteuid() == 0:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        subprocess.run(argv, check=True, capture_output=True, timeout=120)
        if self.postgres.proc is not None:
            self.postgres.proc.wait(30)

    def start_database(self) -> None:
        self.postgres.start(timeout=120)

    def service_url(self, url: str) -> str:
        """The URL a Platen program is given, from one signed in at the broker."""
        return url

    def platen(
        self,
        log_dir: Path,
        extra_env: dict[str, str] | None = None,
        launcher: Launcher | None = None,
        run: Callable[..., Any] = run_module,
    ) -> Platen:
        """Install Platen on a new vhost and database of this stack and start its four
        services, each as its own broker identity and database role (as the tests'
        `system` fixture does on the shared servers). The caller stops them. `launcher` and
        `run` start the services and their migrations (the tests pass their fork server's)."""
        infra = self.infra
        vhosts = Vhosts(infra)
        vhost, amqp_url = vhosts.create()
        identities = Identities(infra)
        ids = identities.for_vhost(vhost)
        # Each program signs in as itself at every node the stack has (one, here).
        ids = replace(
            ids,
            admin=self.service_url(ids.admin),
            services={k: self.service_url(u) for k, u in ids.services.items()},
        )
        _, database_url = _run(create_database(infra.database_url))
        env = {
            "PLATEN_BROKER_MANAGEMENT_URL": ids.management_url,
            "PLATEN_BROKER_MONITOR_URL": ids.monitor_url,
            **(extra_env or {}),
        }
        services = ServiceProcesses(
            amqp_url,
            database_url,
            log_dir,
            extra_env=env,
            service_urls=ids.services,
            launcher=launcher,
        )
        services.provision(run)
        services.start_all()
        return Platen(services, ids, identities, vhosts, vhost)

    def close(self) -> None:
        # A frozen broker ignores SIGTERM until it is thawed.
        with contextlib.suppress(Exception):
            self.thaw_broker()
        self.rabbit.stop()
        self.postgres.stop()


@dataclass
class Platen:
    """Platen's services on one vhost and database of a private stack."""

    services: ServiceProcesses
    ids: VhostIdentities
    identities: Identities
    vhosts: Vhosts
    vhost: str

    def dead_letters(self) -> int:
        """Messages in every dead-letter queue of the vhost (the broker's own count)."""
        queues = self.vhosts.http.get(f"/api/queues/{self.vhost}").json()
        return sum(q.get("messages", 0) for q in queues if q["name"].endswith(".dlq"))


def _run(coro):
    with ThreadPoolExecutor(1) as pool:  # the caller may be inside an event loop
        return pool.submit(asyncio.run, coro).result()


def _running_threads(group: int) -> list[str]:
    """The threads of process group `group` not stopped, as "pid/tid" (state from
    /proc/PID/task/TID/stat: T is stopped; a zombie or a thread gone counts as stopped)."""
    running = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if os.getpgid(int(proc.name)) != group:
                continue
            for task in (proc / "task").iterdir():
                state = (task / "stat").read_text().rpartition(")")[2].split()[0]
                if state not in ("T", "Z", "X"):
                    running.append(f"{proc.name}/{task.name}")
        except (ProcessLookupError, FileNotFoundError):
            continue
    return running


@contextlib.contextmanager
def private_stack() -> Iterator[PrivateStack]:
    """Start a private broker (with TLS, as the tests' own) and database; both stopped and
    their data removed at the end."""
    base = Path(tempfile.mkdtemp(prefix="platen-outage-"))
    lifeline.start()  # a benchmark (chaos.py, outage.py) gets the watcher tests have
    lifeline.remove_after(base)  # should this process be killed before its teardown
    base.chmod(0o755)  # the postgres user must reach its data folder
    tls = make_test_ca(base / "tls")
    rabbit = LocalRabbitMQ(base / "rabbitmq", tls=(tls.ca_cert, tls.server_cert, tls.server_key))
    stack = PrivateStack(base, rabbit, LocalPostgres(base / "postgres"))
    try:
        rabbit.start()
        stack.postgres.start()
        yield stack
    finally:
        stack.close()
        shutil.rmtree(base, ignore_errors=True)
