"""pytest fixtures: a real RabbitMQ and a real PostgreSQL, isolated per test.

Enabled for the whole repository by the root conftest.py (`pytest_plugins`).
"""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator, Iterator

import aio_pika
import pytest
import structlog

from platen.localstack import lifeline
from platen.messaging.topology import declare_topology
from platen.testing import infra as infra_source
from platen.testing.infra import Infra
from platen.testing.isolation import Cleanup, Vhosts, create_database


def pytest_configure(config: pytest.Config) -> None:
    # Every server a test starts (the broker, the database, cupsd, ...) dies with this
    # process, even one killed by a timeout or a crash, which runs no teardown.
    lifeline.start()
    # The code under test logs in this process with structlog's default console output,
    # whose tracebacks (rich, with every frame's locals) cost about 300 ms each: a
    # message that fails six times before it is dead-lettered spent seconds of the event
    # loop rendering them, and under a loaded run long enough to time a test out. The
    # same lines with a plain traceback cost about 1 ms. (The services log JSON.)
    # structlog's own defaults, but for the last step, the renderer.
    *steps, _renderer = structlog.get_config()["processors"]
    structlog.configure(
        processors=[
            *steps,
            structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback),
        ]
    )


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_setup(item: pytest.Item):
    # Outside the unit tier's guard (a tryfirst wrapper wraps the others): the earlier
    # tests' vhosts and databases are removed over the network, which a unit test's
    # guard refuses to every thread of the process.
    if item.get_closest_marker("unit") is not None:
        Cleanup.wait_for_all()
    return (yield)


@pytest.fixture(scope="session")
def infra() -> Iterator[Infra]:
    with infra_source.provide() as provided:
        yield provided


@pytest.fixture(scope="session")
def vhosts(infra: Infra) -> Vhosts:
    return Vhosts(infra)


@pytest.fixture(scope="session")
def cleanup(infra: Infra) -> Iterator[Cleanup]:
    """Removes each test's vhost and databases in the background, while the next test
    runs (platen.testing.isolation.Cleanup); all done before the servers stop. On servers
    deleted whole at the run's end, the databases are left to go with them."""
    remover = Cleanup(infra, keep_databases=infra.throwaway)
    yield remover
    failed = remover.finish()
    if failed:
        warnings.warn(f"left on the test servers: {'; '.join(failed)}", stacklevel=1)


@pytest.fixture
def vhost(vhosts: Vhosts, cleanup: Cleanup) -> Iterator[tuple[str, str]]:
    """(name, amqp_url) of a vhost that exists for this test only."""
    name, url = vhosts.create()
    yield name, url
    cleanup.vhost(name)


@pytest.fixture
def amqp_url(vhost: tuple[str, str]) -> str:
    return vhost[1]


@pytest.fixture
async def channel(amqp_url: str) -> AsyncIterator[aio_pika.abc.AbstractChannel]:
    """A channel on this test's vhost, where Platen's topology (exchanges, the services'
    queues) is declared, as the installer leaves a broker; its connection closed after."""
    connection = await aio_pika.connect(amqp_url)
    try:
        ch = await connection.channel()
        await declare_topology(ch)
        yield ch
    finally:
        await connection.close()


@pytest.fixture
async def database_url(infra: Infra, cleanup: Cleanup) -> AsyncIterator[str]:
    """A PostgreSQL database that exists for this test only."""
    name, url = await create_database(infra.database_url)
    yield url
    cleanup.database(name)


@pytest.fixture(scope="session")
def display() -> Iterator[str]:
    """A private X display (Xvfb) for GUI tests, set as $DISPLAY.

    One for the whole session: Tk keeps its connection to a display after its windows are
    gone, and exits the process if that display disappears while Tk is still in use.
    """
    import os

    from platen.testing.xvfb import xvfb

    with xvfb() as name:
        old = os.environ.get("DISPLAY")
        os.environ["DISPLAY"] = name
        try:
            yield name
        finally:
            if old is None:
                os.environ.pop("DISPLAY", None)
            else:
                os.environ["DISPLAY"] = old
