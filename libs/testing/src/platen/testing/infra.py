"""Where the tests' RabbitMQ and PostgreSQL come from (docs/development.md, "Test tiers").

1. The environment, when PLATEN_TEST_AMQP_URL and PLATEN_TEST_DATABASE_URL are set
   (with PLATEN_TEST_RABBITMQ_MANAGEMENT_URL, default port 15672 of the AMQP host, and
   for the tests that need them PLATEN_TEST_AMQPS_URL, PLATEN_TEST_BROKER_LOG or
   PLATEN_TEST_BROKER_LOG_COMMAND, and PLATEN_TEST_BROKER_RESTART_COMMAND);
2. else testcontainers, when a Docker engine answers;
3. else local binaries started in a temporary folder (see `local.py`).

Every tier offers what every test needs: TLS, the broker's log and a broker restart. Only
the environment tier can lack one, when its variable is not set; a test that needs it then
fails with an InfraError that names the variable. No test is skipped for want of it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from platen.broker_setup.broker_limits import MAX_MESSAGE_BYTES
from platen.localstack import lifeline
from platen.localstack.servers import THROWAWAY, InfraError, LocalPostgres, LocalRabbitMQ
from platen.localstack.tls import make_test_ca

AMQPS_VAR = "PLATEN_TEST_AMQPS_URL"
LOG_VAR = "PLATEN_TEST_BROKER_LOG"
LOG_COMMAND_VAR = "PLATEN_TEST_BROKER_LOG_COMMAND"
RESTART_VAR = "PLATEN_TEST_BROKER_RESTART_COMMAND"
RABBITMQ_IMAGE = "rabbitmq:3.13-management"
POSTGRES_IMAGE = "postgres:15"


@dataclass(frozen=True)
class Infra:
    amqp_url: str  # on the default vhost, with administrator credentials
    management_url: str
    database_url: str  # a database where CREATE DATABASE is allowed
    source: str
    # The same broker over TLS (its CA file in the URL), when the source offers it.
    amqps_url: str | None = None
    # Returns the broker's own log, where it records what it refused.
    read_broker_log: Callable[[], str] | None = None
    # Stops and starts the broker application (every connection drops, queues recover),
    # as in a broker restart in production.
    restart_broker: Callable[[], None] | None = None
    # The servers and all their data are deleted when the run ends (a tier started them
    # for it): what a test made there need not be removed one by one (`Cleanup`).
    throwaway: bool = False

    def tls_url(self) -> str:
        if self.amqps_url is None:
            raise InfraError(
                f"the test broker ({self.source}) offers no TLS listener: set {AMQPS_VAR} "
                "to its amqps:// URL, with ?cafile=<the CA that signed its certificate>"
            )
        return self.amqps_url

    def broker_log(self) -> str:
        if self.read_broker_log is None:
            raise InfraError(
                f"the test broker's log ({self.source}) is not known: set {LOG_VAR} to its "
                f"log file, or {LOG_COMMAND_VAR} to a command that prints it"
            )
        return self.read_broker_log()

    def restart(self) -> None:
        if self.restart_broker is None:
            raise InfraError(
                f"the test broker ({self.source}) cannot be restarted by the tests: set "
                f"{RESTART_VAR} to a command that stops and starts its RabbitMQ application "
                "(e.g. rabbitmqctl stop_app && rabbitmqctl start_app && "
                "rabbitmqctl await_startup)"
            )
        self.restart_broker()


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
        return True
    except Exception:
        return False


def _shell(command: str, what: str) -> str:
    out = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        raise InfraError(f"{what} ({command!r}) exited {out.returncode}: {out.stderr.strip()}")
    return out.stdout


def _log_reader(env: dict[str, str]) -> Callable[[], str] | None:
    if path := env.get(LOG_VAR):
        return lambda: Path(path).read_text(errors="replace")
    if command := env.get(LOG_COMMAND_VAR):
        return lambda: _shell(command, LOG_COMMAND_VAR)
    return None


def infra_from_env(env: dict[str, str]) -> Infra:
    """The environment tier's Infra, from variables alone (no server is contacted)."""
    missing = [v for v in ("PLATEN_TEST_AMQP_URL", "PLATEN_TEST_DATABASE_URL") if not env.get(v)]
    if missing:
        raise InfraError(f"set {' and '.join(missing)} too, or neither")
    amqp = env["PLATEN_TEST_AMQP_URL"]
    host = urlsplit(amqp).hostname or "127.0.0.1"
    restart = env.get(RESTART_VAR)
    return Infra(
        amqp,
        env.get("PLATEN_TEST_RABBITMQ_MANAGEMENT_URL", f"http://{host}:15672"),
        env["PLATEN_TEST_DATABASE_URL"],
        "environment",
        amqps_url=env.get(AMQPS_VAR) or None,
        read_broker_log=_log_reader(env),
        restart_broker=(lambda: _shell(restart, RESTART_VAR)) if restart else None,
    )


@contextlib.contextmanager
def _from_env(statistics_interval_ms: int = 1000, durable: bool = False) -> Iterator[Infra]:
    # The environment's broker is configured by whoever runs it.
    yield infra_from_env(dict(os.environ))


def _rabbitmq_tls_config(statistics_interval_ms: int) -> str:
    """RabbitMQ's settings inside the container: the certificates are mounted at /tls."""
    return "\n".join(
        [
            "listeners.ssl.default = 5671",
            "ssl_options.cacertfile = /tls/ca.pem",
            "ssl_options.certfile = /tls/server.pem",
            "ssl_options.keyfile = /tls/server-key.pem",
            "ssl_options.verify = verify_none",
            "ssl_options.fail_if_no_peer_cert = false",
            "loopback_users = none",
            f"max_message_size = {MAX_MESSAGE_BYTES}",
            f"collect_statistics_interval = {statistics_interval_ms}",
            "",
        ]
    )


def _in_container(container, *argv: str) -> str:
    code, output = container.exec(list(argv))
    text = (output or b"").decode(errors="replace")
    if code != 0:
        raise InfraError(f"{' '.join(argv)} in the broker's container exited {code}: {text}")
    return text


def _wait_for_rabbitmq(container, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            _in_container(container, "rabbitmq-diagnostics", "-q", "check_port_connectivity")
            return
        except InfraError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


@contextlib.contextmanager
def _removed_after(folder: Path) -> Iterator[None]:
    try:
        yield
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def _from_containers(statistics_interval_ms: int = 1000, durable: bool = False) -> Iterator[Infra]:
    # The plain container classes: testcontainers' RabbitMqContainer needs pika and
    # exposes neither the management nor the TLS port.
    from testcontainers.core.container import DockerContainer
    from testcontainers.postgres import PostgresContainer

    base = Path(tempfile.mkdtemp(prefix="platen-test-"))
    # The containers are testcontainers' to remove (at teardown; after a kill, by its
    # reaper, Ryuk, where that runs); their configuration folder is this process's
    # lifeline's.
    lifeline.remove_after(base)
    tls = make_test_ca(base / "tls")
    # The broker runs as its own user in the container: it must read the (test-only) key.
    for path in (base / "tls").iterdir():
        path.chmod(0o644)
    (base / "tls").chmod(0o755)
    config = base / "20-platen.conf"
    config.write_text(_rabbitmq_tls_config(statistics_interval_ms))
    config.chmod(0o644)
    rabbit = (
        DockerContainer(RABBITMQ_IMAGE)
        .with_exposed_ports(5672, 5671, 15672)
        .with_volume_mapping(str(base / "tls"), "/tls", "ro")
        .with_volume_mapping(str(config), "/etc/rabbitmq/conf.d/20-platen.conf", "ro")
    )
    with (
        _removed_after(base),
        rabbit as rmq,
        PostgresContainer(POSTGRES_IMAGE, driver=None) as pg,
    ):
        _wait_for_rabbitmq(rmq)
        host = rmq.get_container_host_ip()
        amqp = f"amqp://guest:guest@{host}:{rmq.get_exposed_port(5672)}/"
        amqps = f"amqps://guest:guest@{host}:{rmq.get_exposed_port(5671)}/?cafile={tls.ca_cert}"

        def restart() -> None:
            for step in ("stop_app", "start_app", "await_startup"):
                _in_container(rmq, "rabbitmqctl", step)

        def read_log() -> str:
            # The image logs to the console: the container's output is the broker's log.
            return b"".join(rmq.get_logs()).decode(errors="replace")

        yield Infra(
            amqp,
            f"http://{host}:{rmq.get_exposed_port(15672)}",
            pg.get_connection_url(),
            "testcontainers",
            amqps_url=amqps,
            read_broker_log=read_log,
            restart_broker=restart,
            throwaway=True,
        )


@contextlib.contextmanager
def _from_local(statistics_interval_ms: int = 1000, durable: bool = False) -> Iterator[Infra]:
    base = Path(tempfile.mkdtemp(prefix="platen-test-"))
    # Removed below; by this process's lifeline if it is killed first (no teardown).
    lifeline.remove_after(base)
    base.chmod(0o755)  # the postgres user must reach its data folder
    tls = make_test_ca(base / "tls")
    rabbit = LocalRabbitMQ(
        base / "rabbitmq",
        tls=(tls.ca_cert, tls.server_cert, tls.server_key),
        statistics_interval_ms=statistics_interval_ms,
    )
    # A test's data goes with the run: no commit waits for the disk (servers.THROWAWAY).
    # A benchmark's commits wait for the disk, as a deployment's do (`durable`).
    pg = LocalPostgres(base / "postgres", settings=() if durable else THROWAWAY)
    try:
        # Side by side: each spends most of its start waiting (the Erlang VM booting,
        # initdb, a port to open), and every worker pays this before its first test.
        _both(rabbit.start, pg.start)
        yield Infra(
            rabbit.amqp_url,
            rabbit.management_url,
            pg.admin_dsn,
            "local binaries",
            amqps_url=rabbit.amqps_url,
            read_broker_log=lambda: rabbit.log_file.read_text(errors="replace"),
            restart_broker=rabbit.restart,
            throwaway=True,
        )
    finally:
        # Side by side too: the last worker's teardown is the run's last seconds.
        _both(lambda: _discard(rabbit), pg.stop)
        # The servers' data (a few hundred MB after a run) goes with them.
        shutil.rmtree(base, ignore_errors=True)


def _discard(rabbit: LocalRabbitMQ) -> None:
    """Kill the test broker outright: its data is deleted next, so its graceful stop
    (7 s at load 5, closing every queue) would keep nothing. PostgreSQL still gets its
    SIGTERM: a killed postmaster can leave shared memory behind."""
    proc = rabbit.proc
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(30)


def _both(first: Callable[[], None], second: Callable[[], None]) -> None:
    """Run both at once; both run to their end, then the first error (if any) is raised."""
    with ThreadPoolExecutor(2) as pool:
        done = [pool.submit(first), pool.submit(second)]
    for future in done:
        future.result()


def choose_tier(env: dict[str, str], docker_answers: Callable[[], bool]):
    """Which tier provides the infrastructure: the environment's when it names a server,
    else containers when Docker answers, else local binaries."""
    if env.get("PLATEN_TEST_AMQP_URL") or env.get("PLATEN_TEST_DATABASE_URL"):
        return _from_env  # both must be set: infra_from_env says so if one is missing
    if docker_answers():
        return _from_containers
    return _from_local


@contextlib.contextmanager
def provide(statistics_interval_ms: int = 1000, durable: bool = False) -> Iterator[Infra]:
    """The tier's infrastructure. A broker started here collects its management statistics
    every `statistics_interval_ms` (1 s, fresh lists for tests; benchmarks of many
    connections ask for RabbitMQ's default, 5 s). A PostgreSQL started here runs with
    fsync off for tests; `durable` keeps PostgreSQL's defaults, so that a benchmark's
    commits cost what they cost in a deployment.

    Whatever the tier, the processes started on these servers through the harness (the
    services, and with local binaries the servers themselves) die with this process
    however it ends (`lifeline`): a benchmark or script killed before its teardown leaves
    none running, as a killed test worker leaves none (the test fixtures start the same
    watcher). The containers tier's containers are testcontainers' to remove (after a
    kill, its reaper's, where that runs); the watcher removes only their folder. Servers
    named by the environment are not this process's to stop."""
    lifeline.start()
    tier = choose_tier(dict(os.environ), _docker_answers)
    with tier(statistics_interval_ms, durable) as infra:
        yield infra
