"""Outages while a CUPS job waits for its user: the broker restarted, the database's
connections cut, job-capture killed. The backend keeps asking (its printer's offline
policy allows an hour), the job prints once and is charged once."""

from __future__ import annotations

import asyncio
import base64
import uuid
from decimal import Decimal as D
from urllib.parse import urlsplit

import aio_pika

from platen.cups_backend.config import BackendConfig, PrinterPolicy
from platen.cups_backend.main import QUERY_TIMEOUT, ask, capture_and_wait
from platen.events.base import HEADER_VERSION
from platen.events.jobs import GetJobStatus, JobStatus, JobSubmitted, SubmitJob
from platen.events.registry import decode
from platen.events.routing import REPLIES
from platen.rpc import amqp_message
from platen.testing.documents import make_pdf
from tests.cups.test_cups_capture import COMPLETED, answer, document, job_state
from tests.e2e.helpers import (
    EventRecorder,
    eventually,
    ledger_problems,
    query,
    terminate_database_connections,
)


def confirming_alice(system) -> None:
    system.ctl("printer", "add", "lab-color", "--price-per-page", "0.10")
    system.ctl("user", "add", "alice", "--balance", "5.00")
    system.ctl("user", "set", "alice", "--selection", "confirm")


async def wait_for_prompt(system, cups, pages: int = 2) -> tuple[int, str]:
    async with EventRecorder(system.amqp_url) as events:
        job = cups.cups.lp("lab-color", document(system, pages), "alice")
        [prompt] = await events.wait_for("job.input_required", 1, timeout=60)
    return job, prompt.correlation_id


async def assert_printed_and_charged_once(system, cups, job: int) -> None:
    await job_state(cups, "lab-color", job, {COMPLETED}, timeout=120)

    async def charges():
        rows = await query(
            system.database_url, "SELECT job_id FROM ledger.transactions WHERE kind = 'charge'"
        )
        return rows or None

    assert await eventually(charges, timeout=60)
    await asyncio.sleep(2)
    assert len(await charges()) == 1
    assert len(cups.printers["lab-color"].received()) == 1
    assert D(system.user_json("alice")["balance"]) == D("4.80")
    assert await ledger_problems(system.database_url) == []


class CuttingProxy:
    """A TCP proxy to the broker that cuts the first `cuts` connections at the moment their
    client publishes (an AMQP basic.publish method frame goes by): a connection that drops
    after it was made, while a request is out, as in a broker restart or a network fault."""

    PUBLISH = bytes([0, 60, 0, 40])  # class basic, method publish

    def __init__(self, target: str, cuts: int) -> None:
        parts = urlsplit(target)
        self.target = parts
        self.cuts = cuts
        self.cut = 0
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> CuttingProxy:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc) -> None:
        self.server.close()

    @property
    def url(self) -> str:
        port = self.server.sockets[0].getsockname()[1]
        netloc = self.target.netloc.rsplit("@", 1)
        return self.target._replace(netloc=f"{netloc[0]}@127.0.0.1:{port}").geturl()

    async def _serve(self, reader, writer) -> None:
        up_reader, up_writer = await asyncio.open_connection(self.target.hostname, self.target.port)

        async def pump(src, dst, watch: bool) -> None:
            try:
                while data := await src.read(65536):
                    if watch and self.cut < self.cuts and self._publishes(data):
                        self.cut += 1
                        break
                    dst.write(data)
                    await dst.drain()
            except OSError:
                pass
            finally:
                for w in (writer, up_writer):
                    w.close()

        await asyncio.gather(pump(reader, up_writer, True), pump(up_reader, writer, False))

    def _publishes(self, data: bytes) -> bool:
        # A method frame: type 1, channel (2 bytes), size (4 bytes), then class and method.
        at = data.find(self.PUBLISH)
        return at >= 7 and data[at - 7] == 1


async def test_the_backends_connection_dropped_while_it_asks(system):
    """The hole: a connection that drops after it was made (not while connecting) is an
    outage like any other, not an error that ends the backend (and stops the CUPS queue)."""
    policy = PrinterPolicy(offline="deny", offline_grace=60)
    # The print server's identity over the broker's plain listener, so that the proxy
    # can see the frames go by.
    tls = urlsplit(system.print_server_url)
    plain = urlsplit(system.identities.infra.amqp_url)
    user = tls.netloc.rsplit("@", 1)[0]
    url = tls._replace(scheme="amqp", netloc=f"{user}@{plain.netloc.rsplit('@', 1)[-1]}", query="")
    async with CuttingProxy(url.geturl(), cuts=2) as proxy:
        config = BackendConfig(proxy.url, "test", {})
        status = await asyncio.wait_for(
            ask(config, policy, GetJobStatus(job_id=uuid.uuid4()), "capture.job.status"), 60
        )
        assert proxy.cut == 2  # two questions were cut off; the third was answered
    assert isinstance(status, JobStatus) and status.state == "unknown"


async def test_a_slow_analysis_is_not_an_outage(system):
    """A printer that denies jobs after 1 s without Platen: a submission answered only
    after a long analysis is not taken for an outage. job-capture is replaced here by a
    responder on its queue that takes longer than any status question may wait."""
    system.services.kill("job-capture")
    submitted: list[SubmitJob] = []
    connection = await aio_pika.connect(system.amqp_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue("job-capture.commands", ensure=False)
        replies = await channel.get_exchange(REPLIES, ensure=False)

        async def respond(raw) -> None:
            async with raw.process():
                request = decode(raw.type, raw.headers[HEADER_VERSION], raw.body)
                if isinstance(request, SubmitJob):
                    await asyncio.sleep(QUERY_TIMEOUT + 3)  # analysing a long document
                    submitted.append(request)
                    reply = JobSubmitted(job_id=request.job_id)
                else:
                    state = "denied" if submitted else "unknown"
                    reply = JobStatus(job_id=request.job_id, state=state, reason="test")
                await replies.publish(
                    amqp_message(reply, correlation_id=raw.message_id), routing_key=raw.reply_to
                )

        await queue.consume(respond)
        submit = SubmitJob(
            job_id=uuid.uuid4(),
            user="alice",
            printer="lab",
            document_name="long.pdf",
            document=base64.b64encode(make_pdf(1)),
        )
        config = BackendConfig(system.print_server_url, "test", {})
        policy = PrinterPolicy(offline="deny", offline_grace=1)
        status = await asyncio.wait_for(capture_and_wait(config, policy, submit), 90)
    assert [s.job_id for s in submitted] == [submit.job_id]  # sent once, answered late
    assert status.state == "denied" and status.reason == "test"


async def test_broker_restarted_while_a_cups_job_waits(system, cups):
    restart = system.identities.infra.restart_broker
    assert restart is not None, "this test broker cannot be restarted by the tests"
    confirming_alice(system)
    job, job_id = await wait_for_prompt(system, cups)
    await asyncio.to_thread(restart)
    await asyncio.sleep(2)  # the backend keeps asking, and gets no answer meanwhile
    assert cups.printers["lab-color"].received() == []
    await asyncio.to_thread(system.wait_ready)
    await answer(system, job_id, "alice")
    await assert_printed_and_charged_once(system, cups, job)


async def test_database_connections_cut_while_a_cups_job_waits(system, cups):
    confirming_alice(system)
    job, job_id = await wait_for_prompt(system, cups)
    killed = await terminate_database_connections(system.database_url, rounds=4)
    assert killed >= 4  # every service had a connection, and they came back
    await answer(system, job_id, "alice")
    await assert_printed_and_charged_once(system, cups, job)
