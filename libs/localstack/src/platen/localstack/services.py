"""Start Platen's services as real processes (for end-to-end tests and `make run`)."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from platen.db.roles import with_login
from platen.localstack import lifeline
from platen.messaging.topology import declare_all

MODULES = {
    "job-capture": "platen.job_capture.main",
    "pricing": "platen.pricing.main",
    "account-ledger": "platen.account_ledger.main",
    "notification": "platen.notification.main",
}


class Launcher(Protocol):
    """Starts `python -m module` with these streams; returns a Popen-like process."""

    def __call__(
        self, module: str, *, env: dict[str, str], stdout: int, stderr: int, new_session: bool
    ) -> Any: ...


def run_module(
    module: str, args: list[str], *, env: dict[str, str], input: str, timeout: float
) -> subprocess.CompletedProcess:
    """`python -m module args...`, its output captured (a fresh interpreter)."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        env=env,
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def provision(
    database_url: str,
    run: Callable[..., Any] = run_module,
    passwords: Callable[[str], str] | None = None,
) -> dict[str, str]:
    """Run every service's migrations on `database_url` (a superuser's) as its schema's
    owner, `python -m <service> migrate` as an installer does; the URL each service then
    signs in with, as its own role. `passwords` gives a service's role password (by
    service name); without it, one is made now. `run` starts the program (`run_module`'s
    signature; the tests pass their fork server's)."""
    password_for = passwords or (lambda _name: secrets.token_urlsafe(24))
    with ThreadPoolExecutor(len(MODULES)) as pool:
        urls = pool.map(
            lambda name: _provision_one(database_url, name, run, password_for(name)), MODULES
        )
        return dict(zip(MODULES, urls, strict=True))


def _provision_one(database_url: str, name: str, run: Callable[..., Any], password: str) -> str:
    out = run(
        MODULES[name],
        ["migrate"],
        env={**os.environ, "PLATEN_DATABASE_URL": database_url},
        input=password,  # not in its arguments, which every user can list
        timeout=300,  # four at once on a loaded two-core machine
    )
    if out.returncode != 0:
        raise RuntimeError(f"{name}: migrate failed:\n{out.stderr[-3000:]}")
    role = out.stdout.strip().splitlines()[-1]
    return with_login(database_url, role, password)


@dataclass
class ServiceProcesses:
    amqp_url: str
    database_url: str
    log_dir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    # service name -> variables for that service alone: a credential only one service
    # needs (the broker's management API, for notification) reaches no other.
    own_env: dict[str, dict[str, str]] = field(default_factory=dict)
    # service name -> the URL it signs in with (its own broker identity); else amqp_url
    service_urls: dict[str, str] = field(default_factory=dict)
    # service name -> the database URL it signs in with (its own role, `provision`); else
    # database_url
    database_urls: dict[str, str] = field(default_factory=dict)
    # How a service's process is started: by default a fresh interpreter
    # (`python -m MODULE`); the tests pass a fork server's `popen`, which runs the same
    # module without paying for the imports again (platen.testing.forkserver).
    launcher: Launcher | None = None
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    def env(self, name: str | None = None) -> dict[str, str]:
        return {
            **os.environ,
            "PLATEN_AMQP_URL": self.service_urls.get(name or "", self.amqp_url),
            "PLATEN_DATABASE_URL": self.database_urls.get(name or "", self.database_url),
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
            **self.own_env.get(name or "", {}),
        }

    def start(self, name: str) -> None:
        self._spawn(name, name)

    def start_replica(self, name: str, replica: int) -> str:
        """One more process of service `name` (replica 2, 3, ...), as a site runs several:
        it consumes the same queues, shares the database, and runs every background task
        the first one does. Returns its key in `procs` (and its log's name)."""
        key = f"{name}#{replica}"
        self._spawn(key, name)
        return key

    def _spawn(self, key: str, name: str) -> None:
        if key in self.procs and self.procs[key].poll() is None:
            raise RuntimeError(f"{key} is already running")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_dir / f"{key}.log", "ab") as log:  # the process has its own copy
            if self.launcher is not None:
                self.procs[key] = self.launcher(
                    MODULES[name],
                    env=self.env(name),
                    stdout=log.fileno(),
                    stderr=subprocess.STDOUT,
                    new_session=True,
                )
                return
            self.procs[key] = subprocess.Popen(
                [sys.executable, "-m", MODULES[name]],
                env=self.env(name),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            lifeline.watch(self.procs[key].pid)

    def provision(
        self,
        run: Callable[..., Any] = run_module,
        passwords: Callable[[str], str] | None = None,
    ) -> None:
        """As the installer, with `database_url` a superuser's: each service's migrations
        run as its schema's owner, and the service then signs in as its own role
        (platen.db.roles) with a password made now or given by `passwords`, handed to it
        in its environment only."""
        self.database_urls.update(provision(self.database_url, run, passwords))

    def install_topology(self) -> None:
        """Declare every exchange and queue, as an installer with broker-admin rights
        does (services declare only their own queues)."""
        with ThreadPoolExecutor(1) as pool:  # the caller may be inside an event loop
            pool.submit(asyncio.run, declare_all(self.amqp_url)).result()

    def start_all(self) -> None:
        """Start every service. The topology must be installed already (by
        `install_topology`, or by `platen.broker_setup.installation.install`)."""
        for name in MODULES:
            self.start(name)

    def kill(self, name: str) -> None:
        """SIGKILL: no clean shutdown, as in a crash."""
        proc = self.procs[name]
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    def stop(self, name: str, timeout: float = 15) -> None:
        proc = self.procs.get(name)
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def stop_all(self, timeout: float = 15) -> None:
        """SIGTERM every service at once, then wait for them: one after another, each
        waited out its own clean shutdown (about a second a service, every test)."""
        running = [p for p in self.procs.values() if p.poll() is None]
        for proc in running:
            proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in running:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def log(self, name: str) -> str:
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""
