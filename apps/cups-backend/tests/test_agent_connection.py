"""The agent's one broker connection while the broker is unreachable: the jobs waiting for
it share each attempt to connect, instead of taking turns (the last of N jobs would wait
N attempts). A real RabbitMQ of the test's own, frozen (SIGSTOP: it accepts connections
and answers nothing, so an attempt lasts its whole timeout) and thawed."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import aio_pika
import pytest

from platen.cups_backend import main
from platen.cups_backend.agent import SharedConnection
from platen.cups_backend.config import BackendConfig, PrinterPolicy
from platen.cups_backend.decisions import Offline
from platen.events.jobs import GetJobStatus
from platen.messaging.topology import declare_topology
from platen.rpc import client as rpc_client
from platen.rpc.client import RequestFailed
from platen.testing.outages import PrivateStack, private_stack

pytestmark = pytest.mark.integration

JOBS = 4
# rpc's `_connect`: how long one attempt waits for a broker that does not answer.
ATTEMPT = 10.0


@pytest.fixture(scope="module")
def stack() -> Iterator[PrivateStack]:
    with private_stack() as s:
        asyncio.run(installed(s.rabbit.amqp_url))
        yield s


async def installed(url: str) -> None:
    """The broker as the installer leaves it (the agent's replies come on its exchanges)."""
    connection = await aio_pika.connect(url)
    async with connection:
        await declare_topology(await connection.channel())


def fields() -> dict[str, object]:
    return {
        "job_id": str(uuid.uuid4()),
        "user": "alice",
        "printer": "lab",
        "document_name": "a.pdf",
    }


async def test_jobs_waiting_for_an_unreachable_broker_share_each_attempt_to_connect(stack):
    url = stack.rabbit.amqp_url
    config = BackendConfig(url, "lab", {})
    # A printer that cancels its jobs once Platen has been unreachable for 1 s.
    policy = PrinterPolicy(offline="deny", offline_grace=1.0)
    shared = SharedConnection(url)
    stack.freeze_broker()
    try:
        started = time.monotonic()
        answers = await asyncio.gather(
            *(
                main.decide(config, policy, fields(), b"%PDF-1.7", session=shared.lease)
                for _ in range(JOBS)
            ),
            return_exceptions=True,
        )
        took = time.monotonic() - started
    finally:
        stack.thaw_broker()
    # Nothing is released (nothing prints free): every job is told Platen is unreachable
    # and its printer's policy (deny: the backend cancels it).
    assert [type(a) for a in answers] == [Offline] * JOBS
    assert {a.args[0] for a in answers} == {"deny"}
    # Each job needed two attempts (the first failure starts its outage, the second finds
    # it past the grace): shared, that is two attempts' time for all of them, where
    # jobs taking turns would have waited up to 2 * JOBS attempts (80 s).
    assert shared.attempts == 2
    assert took < 3 * ATTEMPT

    # The broker back: the jobs asking at once get one new connection between them.
    clients = await asyncio.gather(*(shared.client() for _ in range(JOBS)))
    try:
        assert shared.up
        assert len({id(c) for c in clients}) == 1
        assert shared.attempts == 3
    finally:
        await shared.close()


async def test_a_job_that_stops_waiting_does_not_cancel_the_attempt_the_others_wait_for(stack):
    shared = SharedConnection(stack.rabbit.amqp_url)
    try:
        waiters = [asyncio.ensure_future(shared.client()) for _ in range(3)]
        await asyncio.sleep(0)
        waiters[0].cancel()  # its backend left (cupsd cancelled the job)
        clients = await asyncio.gather(*waiters[1:])
        assert shared.up and clients[0] is clients[1]
        assert shared.attempts == 1
    finally:
        await shared.close()


async def test_a_broker_that_hangs_once_connected_fails_each_request_within_its_timeout(
    stack, monkeypatch
):
    """The broker stops answering after the connection was made (it confirms no
    publication): a request gives up at its timeout as an outage, and the job gets its
    printer's offline policy, not three minutes later when the heartbeat gives up."""
    monkeypatch.setattr(main, "QUERY_TIMEOUT", 2.0)
    monkeypatch.setattr(rpc_client, "STEP_TIMEOUT", 2.0)
    config = BackendConfig(stack.rabbit.amqp_url, "lab", {})
    policy = PrinterPolicy(offline="deny", offline_grace=1.0)
    shared = SharedConnection(stack.rabbit.amqp_url)
    client = await shared.client()  # connected while the broker answers
    stack.freeze_broker()
    try:
        started = time.monotonic()
        with pytest.raises(RequestFailed, match=r"no answer to 'capture\.job\.status' within 2s"):
            await client.request("capture.job.status", GetJobStatus(job_id=uuid.uuid4()), 2.0)
        asked = time.monotonic() - started
        # Nor does a step that is not a request wait for the heartbeat: binding a key.
        with pytest.raises(RequestFailed, match="no answer from the broker within 2s"):
            await client.listen("decision.lab.x", lambda _raw: None)
        [answer] = await asyncio.gather(
            main.decide(config, policy, fields(), b"%PDF-1.7", session=shared.lease),
            return_exceptions=True,
        )
    finally:
        stack.thaw_broker()
        await shared.close()
    # Far from the heartbeat's three minutes (a loose bound: the machine is shared).
    assert asked < 30
    assert isinstance(answer, Offline) and answer.args[0] == "deny"
    assert shared.attempts == 1  # the connection was never lost: nothing to reconnect


async def test_a_broker_that_hangs_while_a_connection_is_set_up_is_an_outage(stack, monkeypatch):
    """The broker accepts the connection, then hangs before the reply queue is declared:
    the attempt gives up after STEP_TIMEOUT, an outage like a broker that does not answer
    at all, and the job gets its printer's offline policy."""
    monkeypatch.setattr(rpc_client, "STEP_TIMEOUT", 2.0)
    answering = rpc_client._first_answering

    async def then_hang(url: str):
        connection = await answering(url)
        stack.freeze_broker()
        return connection

    monkeypatch.setattr(rpc_client, "_first_answering", then_hang)
    shared = SharedConnection(stack.rabbit.amqp_url)
    try:
        with pytest.raises(RequestFailed, match="no answer from the broker within 2s"):
            await shared.client()
        [answer] = await asyncio.gather(
            main.decide(
                BackendConfig(stack.rabbit.amqp_url, "lab", {}),
                PrinterPolicy(offline="deny", offline_grace=1.0),
                fields(),
                b"%PDF-1.7",
                session=shared.lease,
            ),
            return_exceptions=True,
        )
    finally:
        stack.thaw_broker()
        await shared.close()
    assert isinstance(answer, Offline) and answer.args[0] == "deny"
    assert shared.attempts == 3  # the first above, then two for the job
