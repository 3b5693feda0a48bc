"""Run RabbitMQ and PostgreSQL as private local processes.

Used by the test fixtures when neither environment variables nor a Docker engine
provide the infrastructure, and by `make run`. Each server lives entirely inside one
folder (data, logs, sockets), so several can run side by side and nothing touches the
system's own instances.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from platen.broker_setup.broker_limits import MAX_MESSAGE_BYTES
from platen.localstack import lifeline

RABBITMQ_SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
RABBITMQCTL = Path("/usr/lib/rabbitmq/bin/rabbitmqctl")
PG_BIN = Path("/usr/lib/postgresql/15/bin")


class InfraError(RuntimeError):
    """A local server could not be started."""


class PortTaken(InfraError):
    """A server did not start because a port or node name it was given is another's."""


# What RabbitMQ says when its name or a port is another node's; how often a start that
# picked its own ports picks again.
PORT_TAKEN = ("duplicate_node_name", "eaddrinuse")
PORT_ATTEMPTS = 3
# What RabbitMQ prints once it has booted, every listener open: "Starting broker...
# completed with 1 plugins."
BOOTED = b"Starting broker... completed"


# Where the kernel picks the local ports of outgoing connections (and of bind to port 0).
EPHEMERAL_PORTS = Path("/proc/sys/net/ipv4/ip_local_port_range")
LOWEST_PORT = 10000


def free_port() -> int:
    """A port nothing listens on, for a server to come: chosen below the kernel's range
    of ephemeral ports. A port from that range, freed while its server restarts (a
    cluster node rejoining, a broker stopped for an outage test), can be taken meanwhile
    as the local port of any outgoing connection, and the server then cannot listen
    again (a whole run failed so: `eaddrinuse` at a node's `start_app`)."""
    try:
        low = int(EPHEMERAL_PORTS.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 0
    for _ in range(100) if low > LOWEST_PORT + 1000 else ():
        port = LOWEST_PORT + secrets.randbelow(low - LOWEST_PORT)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue  # in use: another
            return port
    with socket.socket() as s:  # no such range here: the kernel's choice
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise InfraError(f"process exited with {proc.returncode} before port {port} opened")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise InfraError(f"port {port} did not open within {timeout:.0f}s")


def stop_process(proc: subprocess.Popen | None, timeout: float = 20) -> None:
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


@dataclass
class LocalRabbitMQ:
    """A RabbitMQ node running from `folder`, with the management plugin enabled."""

    folder: Path
    amqp_port: int = 0
    management_port: int = 0
    dist_port: int = 0
    nodename: str = ""
    proc: subprocess.Popen | None = field(default=None, repr=False)
    # (CA certificate, server certificate, server key): also listen for AMQP over TLS.
    tls: tuple[Path, Path, Path] | None = None
    amqps_port: int = 0
    # A plain AMQP listener on loopback, beside the TLS one (the tests use it); off, the
    # broker speaks AMQP over TLS only (`make run`).
    plaintext: bool = True
    # RabbitMQ's Prometheus metrics (the `rabbitmq_prometheus` plugin) on loopback at this
    # port; 0: off (the tests' brokers start lighter without it).
    prometheus_port: int = 0
    # How often the management plugin collects its statistics. 1 s gives tests fresh
    # connection lists; RabbitMQ's own default (5 s, what a deployment runs) costs the
    # broker far less CPU with thousands of connections (bench/desktops.py).
    statistics_interval_ms: int = 1000

    @property
    def amqp_url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.amqp_port}/"

    @property
    def amqps_url(self) -> str | None:
        if self.tls is None:
            return None
        return f"amqps://guest:guest@127.0.0.1:{self.amqps_port}/?cafile={self.tls[0]}"

    @property
    def management_url(self) -> str:
        return f"http://127.0.0.1:{self.management_port}"

    @property
    def log_file(self) -> Path:
        return self.folder / "log" / f"{self.nodename}.log"

    def env(self) -> dict[str, str]:
        f = self.folder
        return {
            **os.environ,
            "HOME": str(f),
            "RABBITMQ_MNESIA_BASE": str(f / "mnesia"),
            "RABBITMQ_LOG_BASE": str(f / "log"),
            "RABBITMQ_NODENAME": self.nodename,
            "RABBITMQ_NODE_PORT": str(self.amqp_port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_CONFIG_FILE": str(f / "rabbitmq"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(f / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(f / "rabbitmq.pid"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }

    def start(self, timeout: float = 90) -> LocalRabbitMQ:
        if not RABBITMQ_SERVER.exists():
            raise InfraError("rabbitmq-server is not installed (apt-get install rabbitmq-server)")
        # Ports this start picks itself (none given) may be picked again if they turn out
        # taken: `free_port` only says a port was free a moment ago, and servers started
        # side by side (test workers, other runs on the machine) can be handed the same
        # one. Two nodes then also share a name (`platen<port>`), and the later one exits.
        ours = not (self.amqp_port or self.management_port or self.dist_port or self.nodename)
        for attempt in range(1, PORT_ATTEMPTS + 1):
            try:
                return self._start(timeout)
            except PortTaken:
                if not ours or attempt == PORT_ATTEMPTS:
                    raise
                self.amqp_port = self.management_port = self.dist_port = self.amqps_port = 0
                self.nodename = ""
        raise AssertionError("unreachable")

    def _start(self, timeout: float) -> LocalRabbitMQ:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.amqp_port = self.amqp_port or free_port()
        self.management_port = self.management_port or free_port()
        self.dist_port = self.dist_port or free_port()
        self.nodename = self.nodename or f"platen{self.amqp_port}@localhost"
        tls_lines = []
        if self.tls is not None:
            self.amqps_port = self.amqps_port or free_port()
            ca, cert, key = self.tls
            tls_lines = [
                f"listeners.ssl.default = 127.0.0.1:{self.amqps_port}",
                f"ssl_options.cacertfile = {ca}",
                f"ssl_options.certfile = {cert}",
                f"ssl_options.keyfile = {key}",
                "ssl_options.verify = verify_none",
                "ssl_options.fail_if_no_peer_cert = false",
            ]
        (self.folder / "rabbitmq.conf").write_text(
            "\n".join(
                [
                    *tls_lines,
                    f"listeners.tcp.default = 127.0.0.1:{self.amqp_port}"
                    if self.plaintext
                    else "listeners.tcp = none",
                    f"management.tcp.port = {self.management_port}",
                    "management.tcp.ip = 127.0.0.1",
                    "loopback_users = none",
                    f"max_message_size = {MAX_MESSAGE_BYTES}",
                    f"collect_statistics_interval = {self.statistics_interval_ms}",
                    # Quorum queues keep their Raft log here; small segments keep the
                    # test broker light.
                    "raft.segment_max_entries = 4096",
                    "log.console = false",
                    "log.file.level = warning",
                    *(
                        [
                            f"prometheus.tcp.port = {self.prometheus_port}",
                            "prometheus.tcp.ip = 127.0.0.1",
                        ]
                        if self.prometheus_port
                        else []
                    ),
                    "",
                ]
            )
        )
        plugins = (
            "rabbitmq_management,rabbitmq_prometheus"
            if self.prometheus_port
            else "rabbitmq_management"
        )
        (self.folder / "enabled_plugins").write_text(f"[{plugins}].\n")
        out = self.folder / "server.out"
        log = open(out, "ab")  # noqa: SIM115 - lives as long as the server
        begun = log.tell()  # what an earlier start of this node wrote stays before
        self.proc = subprocess.Popen(
            [str(RABBITMQ_SERVER)],
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        lifeline.watch(self.proc.pid)
        try:
            # Booted first, then the ports: a port that answers may be another program's
            # (a port picked twice), and the node opens its AMQP listeners last, failing
            # its boot if one is taken.
            self._wait_booted(out, begun, timeout)
            if self.plaintext:
                wait_for_port(self.amqp_port, timeout, self.proc)
            wait_for_port(self.management_port, timeout, self.proc)
            if self.tls is not None:
                wait_for_port(self.amqps_port, timeout, self.proc)
        except InfraError as exc:
            self.stop()
            tail = out.read_text(errors="replace")[-2000:]
            said = tail + (
                self.log_file.read_text(errors="replace") if self.log_file.exists() else ""
            )
            error = PortTaken if any(sign in said for sign in PORT_TAKEN) else InfraError
            raise error(f"RabbitMQ did not start: {exc}\n{tail}") from exc
        return self

    def _wait_booted(self, out: Path, begun: int, timeout: float) -> None:
        """Until the node says it has booted (its listeners open), in what this start wrote."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with out.open("rb") as f:
                f.seek(begun)
                if BOOTED in f.read():
                    return
            if self.proc.poll() is not None:
                raise InfraError(f"process exited with {self.proc.returncode} before it booted")
            time.sleep(0.1)
        raise InfraError(f"not booted within {timeout:.0f}s")

    def ctl(self, *args: str, timeout: float = 60) -> str:
        out = subprocess.run(
            [str(RABBITMQCTL), "-n", self.nodename, *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if out.returncode != 0:
            raise InfraError(f"rabbitmqctl {' '.join(args)} failed: {out.stderr.strip()}")
        return out.stdout

    def restart(self) -> None:
        """Stop and start the RabbitMQ application on its running node: every connection
        drops and every queue restarts from disk, as in a broker restart."""
        # Generous: on a loaded machine the app (and its quorum queues) can take minutes
        # to come back, and a restart that is slow is not a failure of what is tested.
        self.ctl("stop_app", timeout=300)
        self.ctl("start_app", timeout=300)
        self.ctl("await_startup", timeout=300)

    def stop(self) -> None:
        stop_process(self.proc)
        # The Erlang port mapper daemon outlives the node; it is shared and harmless.


def traversable(folder: Path) -> bool:
    """True when every ancestor of `folder` lets other users pass through it."""
    return all(p.stat().st_mode & 0o001 for p in folder.resolve().parents)


# For a server whose data is thrown away with it (a test run's): never wait for the disk.
# A commit still reaches the operating system before it returns (synchronous_commit stays
# on), so a server killed or stopped loses nothing, as the outage tests need; only a crash
# of the machine itself could, and the data goes then anyway. Every CREATE DATABASE,
# migration and commit of a test waited on fsync (a copy of a database: 0.2 to 1.2 s at
# load 10, two thirds of it waiting on the disk the other helpers' tests share).
THROWAWAY = ("fsync=off", "full_page_writes=off")


@dataclass
class LocalPostgres:
    """A PostgreSQL cluster in `folder`, owned by the `postgres` user when run as root."""

    folder: Path
    port: int = 0
    proc: subprocess.Popen | None = field(default=None, repr=False)
    # Server settings beyond the ones below, `name=value` (THROWAWAY for a test's server).
    settings: tuple[str, ...] = ()

    @property
    def password_file(self) -> Path:
        """The superuser's password, made with the cluster, readable by its owner only."""
        return self.folder / "superuser.secret"

    @property
    def admin_dsn(self) -> str:
        password = self.password_file.read_text().strip()
        return f"postgresql://postgres:{password}@127.0.0.1:{self.port}/postgres"

    def _make_password_file(self) -> None:
        fd = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, (secrets.token_urlsafe(24) + "\n").encode())
        finally:
            os.close(fd)
        if os.geteuid() == 0:  # initdb, run as postgres, reads it
            shutil.chown(self.password_file, "postgres", "postgres")

    def _as_owner(self, argv: list[str]) -> list[str]:
        # initdb and postgres refuse to run as root.
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--", *argv]
        return argv

    def start(self, timeout: float = 60) -> LocalPostgres:
        if not (PG_BIN / "initdb").exists():
            raise InfraError("PostgreSQL 15 is not installed (apt-get install postgresql-15)")
        self.port = self.port or free_port()
        data = self.folder / "data"
        self.folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
            if not os.access(self.folder, os.X_OK, effective_ids=False) or not traversable(
                self.folder
            ):
                raise InfraError(
                    f"{self.folder}: every parent folder must be searchable by the postgres user"
                )
        if not (data / "PG_VERSION").exists():
            # Every user of a shared host can reach the port and the socket: everyone,
            # the superuser included, signs in with a password (SCRAM), never on trust.
            self._make_password_file()
            out = subprocess.run(
                self._as_owner(
                    [
                        str(PG_BIN / "initdb"),
                        "-D",
                        str(data),
                        "-U",
                        "postgres",
                        "--auth=scram-sha-256",
                        f"--pwfile={self.password_file}",
                        "--encoding=UTF8",
                        "--no-sync",
                    ]
                ),
                capture_output=True,
                text=True,
            )
            if out.returncode != 0:
                raise InfraError(f"initdb failed: {out.stderr}")
        elif not self.password_file.exists():
            raise InfraError(
                f"{data} was made when PostgreSQL trusted every local user; remove "
                f"{self.folder} to make it again with password authentication"
            )
        log = open(self.folder / "server.out", "ab")  # noqa: SIM115 - lives as long as the server
        self.proc = subprocess.Popen(
            self._as_owner(
                [
                    str(PG_BIN / "postgres"),
                    "-D",
                    str(data),
                    "-p",
                    str(self.port),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    f"unix_socket_directories={self.folder}",
                    "-c",
                    "max_connections=400",
                    "-c",
                    "shared_buffers=128MB",
                    *(arg for setting in self.settings for arg in ("-c", setting)),
                ]
            ),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        lifeline.watch(self.proc.pid)
        try:
            wait_for_port(self.port, timeout, self.proc)
            self._wait_ready(timeout)
        except InfraError as exc:
            self.stop()
            tail = (self.folder / "server.out").read_text(errors="replace")[-2000:]
            raise InfraError(f"PostgreSQL did not start: {exc}\n{tail}") from exc
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ok = subprocess.run(
                [str(PG_BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                capture_output=True,
            )
            if ok.returncode == 0:
                return
            time.sleep(0.2)
        raise InfraError("PostgreSQL did not accept connections")

    def stop(self) -> None:
        # SIGTERM to the session also reaches runuser's child, the postmaster.
        stop_process(self.proc)
