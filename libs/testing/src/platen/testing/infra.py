"""Where the tests' RabbitMQ and PostgreSQL come from.

1. PLATEN_TEST_AMQP_URL / PLATEN_TEST_DATABASE_URL (and PLATEN_TEST_RABBITMQ_MANAGEMENT_URL,
   default: port 15672 of the AMQP host) when set;
2. else testcontainers, when a Docker engine answers;
3. else local binaries started in a temporary folder (see `local.py`).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from platen.testing.local import LocalPostgres, LocalRabbitMQ
from platen.testing.tls import make_test_ca


@dataclass(frozen=True)
class Infra:
    amqp_url: str  # on the default vhost, with administrator credentials
    management_url: str
    database_url: str  # a database where CREATE DATABASE is allowed
    source: str
    # The same broker over TLS (its CA file in the URL), when the source offers it.
    amqps_url: str | None = None
    # The broker's own log, where it records what it refused, when the source exposes it.
    broker_log: Path | None = None
    # Stops and starts the broker application (every connection drops, queues recover),
    # when the source can: as a broker restart in production.
    restart_broker: Callable[[], None] | None = None


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
        return True
    except Exception:
        return False


@contextlib.contextmanager
def _from_env() -> Iterator[Infra]:
    amqp = os.environ["PLATEN_TEST_AMQP_URL"]
    host = urlsplit(amqp).hostname or "127.0.0.1"
    mgmt = os.environ.get("PLATEN_TEST_RABBITMQ_MANAGEMENT_URL", f"http://{host}:15672")
    yield Infra(amqp, mgmt, os.environ["PLATEN_TEST_DATABASE_URL"], "environment")


@contextlib.contextmanager
def _from_containers() -> Iterator[Infra]:
    from testcontainers.postgres import PostgresContainer
    from testcontainers.rabbitmq import RabbitMqContainer

    with (
        RabbitMqContainer("rabbitmq:3.13-management") as rmq,
        PostgresContainer("postgres:15", driver=None) as pg,
    ):
        host = rmq.get_container_host_ip()
        amqp = f"amqp://guest:guest@{host}:{rmq.get_exposed_port(5672)}/"
        mgmt = f"http://{host}:{rmq.get_exposed_port(15672)}"
        yield Infra(amqp, mgmt, pg.get_connection_url(), "testcontainers")


@contextlib.contextmanager
def _from_local() -> Iterator[Infra]:
    base = Path(tempfile.mkdtemp(prefix="platen-test-"))
    base.chmod(0o755)  # the postgres user must reach its data folder
    tls = make_test_ca(base / "tls")
    rabbit = LocalRabbitMQ(base / "rabbitmq", tls=(tls.ca_cert, tls.server_cert, tls.server_key))
    pg = LocalPostgres(base / "postgres")
    try:
        rabbit.start()
        pg.start()
        yield Infra(
            rabbit.amqp_url,
            rabbit.management_url,
            pg.admin_dsn,
            "local binaries",
            amqps_url=rabbit.amqps_url,
            broker_log=rabbit.log_file,
            restart_broker=rabbit.restart,
        )
    finally:
        rabbit.stop()
        pg.stop()


@contextlib.contextmanager
def provide() -> Iterator[Infra]:
    if os.environ.get("PLATEN_TEST_AMQP_URL") and os.environ.get("PLATEN_TEST_DATABASE_URL"):
        source = _from_env
    elif _docker_answers():
        source = _from_containers
    else:
        source = _from_local
    with source() as infra:
        yield infra
