"""How the backend waits for its job's decision (`main.capture_and_wait`), over a fake
client (no broker): a push of the job's decision ends the wait with it, any other push
only wakes it and the status it then asks for decides; without pushes it finds the
decision by its slow check."""

from __future__ import annotations

import asyncio
import base64
import uuid
from contextlib import asynccontextmanager
from types import SimpleNamespace

import pytest
from aiormq.exceptions import ChannelAccessRefused

from platen.cups_backend import main
from platen.cups_backend.config import BackendConfig, PrinterPolicy
from platen.events.base import HEADER_VERSION
from platen.events.jobs import JobStatus, JobSubmitted, SubmitJob
from platen.events.registry import encode
from platen.events.routing import decision_key, decisions_of
from platen.rpc.client import RequestFailed

PRINT_SERVER = "amqp://test-platen-print-server.lab:pw@127.0.0.1:1/"
JOB = uuid.uuid4()
# Generous: the waits below end on a condition; this only keeps a broken test from hanging.
DEADLINE = 30
ABOUT = {"user": "alice", "printer": "lab", "document_name": "a.pdf"}


class Connection:
    def __init__(self) -> None:
        self.close_callbacks: set = set()


class FakeClient:
    """Answers status questions from `states` (the last one repeats), records them, and
    lets the test push what job-capture would."""

    def __init__(self, states: list[str], *, refuse_listen: bool = False) -> None:
        self.states = states
        self.refuse_listen = refuse_listen
        self.connection = Connection()
        self.asked: list[str] = []
        self.listening: dict[str, object] = {}
        self.waiting = asyncio.Event()  # set when the backend asks and gets a non-decision

    async def listen(self, key, on_message, *, under=None) -> None:
        if self.refuse_listen:
            raise ChannelAccessRefused("ACCESS_REFUSED")
        self.listening[key] = on_message
        self.under = under

    async def unlisten(self, key) -> None:
        self.listening.pop(key)

    async def request(self, routing_key, message, timeout=15.0, *, correlation_id=None):
        self.asked.append(routing_key)
        if routing_key == "capture.submit":
            return JobSubmitted(job_id=message.job_id)
        state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        if state not in main.FINAL and state != "unknown":
            self.waiting.set()
        return JobStatus(job_id=message.job_id, state=state)

    def push(self, status: JobStatus | None = None) -> None:
        """What job-capture pushes under the job's decision key: `status` as it would
        send it, or (None) something that is no message of the contract."""
        raw = object() if status is None else delivery(status)
        self.listening[decision_key("lab", JOB)](raw)


def delivery(status: JobStatus) -> SimpleNamespace:
    # The parts of an aio-pika delivery a push is read from.
    return SimpleNamespace(
        type=status.message_type,
        headers={HEADER_VERSION: status.schema_version},
        body=encode(status),
    )


def submission() -> SubmitJob:
    # A one-page job of alice's on printer lab; what it holds does not matter here.
    document = base64.b64encode(b"%PDF-1.7")
    return SubmitJob.model_validate({**ABOUT, "job_id": JOB, "document": document})


@pytest.fixture
def clients(monkeypatch):
    made: list[FakeClient] = []

    def use(*clients: FakeClient) -> list[FakeClient]:
        queue = list(clients)

        @asynccontextmanager
        async def connect(url):
            client = queue.pop(0) if len(queue) > 1 else queue[0]
            made.append(client)
            yield client

        monkeypatch.setattr(main, "connect", connect)
        return made

    return use


async def wait_until_waiting(client: FakeClient) -> None:
    await asyncio.wait_for(client.waiting.wait(), DEADLINE)
    client.waiting.clear()


async def test_a_push_wakes_the_backend_which_asks_and_is_released(clients, monkeypatch):
    monkeypatch.setattr(main, "FALLBACK_CHECK", 3600.0)  # only a push can end this wait
    client = FakeClient(["unknown", "captured", "captured", "released"])
    clients(client)
    config = BackendConfig(PRINT_SERVER, "lab", {})
    waiting = asyncio.create_task(main.capture_and_wait(config, PrinterPolicy(), submission()))
    await wait_until_waiting(client)  # submitted, and waiting for the decision
    assert client.asked == ["capture.job.status", "capture.submit", "capture.job.status"]
    assert list(client.listening) == [decision_key("lab", JOB)]
    assert client.under is None  # its own connection: bound under the job's key alone
    client.push()  # a stale push (still captured): the backend asks, and waits again
    await wait_until_waiting(client)
    client.push()
    status = await asyncio.wait_for(waiting, DEADLINE)
    assert status.state == "released"
    assert client.asked.count("capture.submit") == 1
    assert client.asked.count("capture.job.status") == 4


async def test_a_pushed_decision_ends_the_wait_without_another_question(clients, monkeypatch):
    """The push carries the decision: the backend takes it as a status question's answer
    (only job-capture may push under the key) and asks nothing after it."""
    monkeypatch.setattr(main, "FALLBACK_CHECK", 3600.0)
    client = FakeClient(["unknown", "captured"])
    clients(client)
    config = BackendConfig(PRINT_SERVER, "lab", {})
    waiting = asyncio.create_task(main.capture_and_wait(config, PrinterPolicy(), submission()))
    await wait_until_waiting(client)
    client.push(JobStatus(job_id=JOB, state="denied", reason="over quota"))
    status = await asyncio.wait_for(waiting, DEADLINE)
    assert (status.state, status.reason) == ("denied", "over quota")
    assert client.asked == ["capture.job.status", "capture.submit", "capture.job.status"]


async def test_a_push_that_is_no_decision_of_this_job_only_wakes_the_wait(clients, monkeypatch):
    """Another job's decision, a state that is no decision, or a body that is no status:
    the backend asks, and the answer decides (here: still waiting, then cancelled)."""
    monkeypatch.setattr(main, "FALLBACK_CHECK", 3600.0)
    client = FakeClient(["unknown", "captured", "captured", "captured", "captured", "cancelled"])
    clients(client)
    config = BackendConfig(PRINT_SERVER, "lab", {})
    waiting = asyncio.create_task(main.capture_and_wait(config, PrinterPolicy(), submission()))
    await wait_until_waiting(client)
    client.push(JobStatus(job_id=uuid.uuid4(), state="released"))  # someone else's job
    await wait_until_waiting(client)
    client.push(JobStatus(job_id=JOB, state="priced"))  # not a decision
    await wait_until_waiting(client)
    broken = delivery(JobStatus(job_id=JOB, state="released"))
    broken.body = b'{"job_id": "not an id", "state": "released"}'
    client.listening[decision_key("lab", JOB)](broken)
    await wait_until_waiting(client)
    assert not waiting.done()
    client.push()
    status = await asyncio.wait_for(waiting, DEADLINE)
    assert status.state == "cancelled"
    assert client.asked.count("capture.job.status") == 6


async def test_a_lost_connection_wakes_the_wait_and_the_backend_resumes(clients, monkeypatch):
    monkeypatch.setattr(main, "FALLBACK_CHECK", 3600.0)
    first = FakeClient(["captured"])
    second = FakeClient(["denied"])
    clients(first, second)
    config = BackendConfig(PRINT_SERVER, "lab", {})
    waiting = asyncio.create_task(main.capture_and_wait(config, PrinterPolicy(), submission()))
    await wait_until_waiting(first)

    async def dropped(*args, **kwargs):
        raise ConnectionResetError("broker gone")

    first.request = dropped
    for callback in first.connection.close_callbacks:
        callback(first.connection, None)  # what aio-pika calls when the connection drops
    status = await asyncio.wait_for(waiting, DEADLINE)
    # Resumed on a new connection, bound again, and not submitted again (Platen has it).
    assert status.state == "denied"
    assert second.asked == ["capture.job.status"]
    assert list(second.listening) == [decision_key("lab", JOB)]


async def test_without_pushes_the_slow_check_finds_the_decision(clients, monkeypatch):
    monkeypatch.setattr(main, "FALLBACK_CHECK", 0.01)
    refused = FakeClient(["captured"], refuse_listen=True)
    plain = FakeClient(["captured", "captured", "released"], refuse_listen=True)
    made = clients(refused, plain)
    config = BackendConfig(PRINT_SERVER, "lab", {})
    status = await asyncio.wait_for(
        main.capture_and_wait(config, PrinterPolicy(), submission()), DEADLINE
    )
    assert status.state == "released"
    # Refused once, then the backend stopped binding and asked until decided.
    assert made[0] is refused and refused.asked == []
    assert plain.listening == {} and plain.asked.count("capture.job.status") == 3


async def test_a_short_offline_limit_checks_as_often(clients, monkeypatch):
    """Only a question finds out that job-capture is not answering: a printer that holds
    its jobs after 0.05 s without Platen is checked on that often, pushes or not."""
    monkeypatch.setattr(main, "FALLBACK_CHECK", 3600.0)
    client = FakeClient(["captured", "captured", "released"])
    clients(client)
    config = BackendConfig(PRINT_SERVER, "lab", {})
    policy = PrinterPolicy(offline="hold", offline_wait=0.05)
    status = await asyncio.wait_for(main.capture_and_wait(config, policy, submission()), DEADLINE)
    assert status.state == "released" and client.asked.count("capture.job.status") == 3


class SlowSubmission(FakeClient):
    """Answers a submission only once the backend has asked `watches` status questions
    while it waited (a long analysis); the questions as FakeClient."""

    def __init__(self, states: list[str], watches: int) -> None:
        super().__init__(states)
        self.watches = watches
        self.pending = False
        self.watched = asyncio.Event()

    async def request(self, routing_key, message, timeout=15.0, *, correlation_id=None):
        if routing_key == "capture.submit":
            self.asked.append(routing_key)
            self.pending = True
            await self.watched.wait()
            self.pending = False
            return JobSubmitted(job_id=message.job_id)
        if self.pending:
            self.watches -= 1
            if self.watches == 0:
                self.watched.set()
        return await super().request(routing_key, message, timeout, correlation_id=correlation_id)


class Unanswered(FakeClient):
    """Platen not there: the broker takes the requests, and nothing answers them."""

    async def request(self, routing_key, message, timeout=15.0, *, correlation_id=None):
        self.asked.append(routing_key)
        if routing_key == "capture.submit":
            await asyncio.sleep(3600)
        raise RequestFailed(f"no answer to {routing_key!r} within {timeout:.0f}s")


class QuestionUnanswered(FakeClient):
    """The submission is answered once a status question is open, and that question
    never is (its answer lost, say); the questions after the submission as FakeClient."""

    def __init__(self, states: list[str]) -> None:
        super().__init__(states)
        self.question_open = asyncio.Event()
        self.submitted = False

    async def request(self, routing_key, message, timeout=15.0, *, correlation_id=None):
        if routing_key == "capture.submit":
            self.asked.append(routing_key)
            await self.question_open.wait()
            self.submitted = True
            return JobSubmitted(job_id=message.job_id)
        if not self.submitted:
            self.asked.append(routing_key)
            self.question_open.set()
            await asyncio.sleep(3600)
        return await super().request(routing_key, message, timeout, correlation_id=correlation_id)


async def decided_new(said: list[tuple[str, str]]) -> JobStatus:
    """A new job's wait for its decision (`new=True`); what the backend says goes to `said`."""
    config = BackendConfig(PRINT_SERVER, "lab", {})
    return await asyncio.wait_for(
        main.capture_and_wait(
            config, PrinterPolicy(), submission(), new=True, say=lambda *line: said.append(line)
        ),
        DEADLINE,
    )


async def test_a_new_job_is_submitted_without_a_question_first(clients, monkeypatch):
    """Its id was made by this run: Platen cannot know it, and asking would only cost a
    round trip. An id an earlier run kept is asked about first (the tests above)."""
    monkeypatch.setattr(main, "WATCH_AFTER", 3600.0)  # answered at once: nothing to watch
    client = FakeClient(["released"])
    clients(client)
    config = BackendConfig(PRINT_SERVER, "lab", {})
    status = await asyncio.wait_for(
        main.capture_and_wait(config, PrinterPolicy(), submission(), new=True), DEADLINE
    )
    assert status.state == "released"
    assert client.asked == ["capture.submit", "capture.job.status"]


async def test_a_new_jobs_long_analysis_is_watched_and_is_no_outage(clients, monkeypatch):
    """While the submission waits for its analysis, the backend asks whether Platen is
    there; answered, it goes on waiting for the submission and says no outage."""
    monkeypatch.setattr(main, "WATCH_AFTER", 0.05)
    client = SlowSubmission(["captured", "captured", "released"], watches=2)
    clients(client)
    said: list[tuple[str, str]] = []
    status = await decided_new(said)
    assert status.state == "released"
    # Two questions while the submission waited, answered: then the submission's answer,
    # and the questions after it until the decision.
    assert client.asked[:3] == ["capture.submit", "capture.job.status", "capture.job.status"]
    assert client.asked.count("capture.submit") == 1  # waited for, not sent again
    assert not [line for line in said if "unreachable" in line[1]]


async def test_a_new_jobs_submission_answered_ends_the_watch_without_its_question(
    clients, monkeypatch
):
    """The submission is answered while a watch question is still open: the backend goes
    on at once (waiting for that question, up to its timeout, would delay the job and then
    take the missing answer for an outage)."""
    monkeypatch.setattr(main, "WATCH_AFTER", 0.05)
    client = QuestionUnanswered(["released"])
    clients(client)
    said: list[tuple[str, str]] = []
    status = await decided_new(said)
    assert status.state == "released"
    assert client.asked == ["capture.submit", "capture.job.status", "capture.job.status"]
    assert not [line for line in said if "unreachable" in line[1]]


async def test_a_new_job_nobody_answers_is_an_outage_then_asked_about_first(clients, monkeypatch):
    """No answer to the submission nor to the question asked meanwhile: an outage, as the
    question first would have found. The next attempt asks first: the submission may be
    waiting in Platen's queue."""
    monkeypatch.setattr(main, "WATCH_AFTER", 0.1)
    absent, back = Unanswered(["unknown"]), FakeClient(["unknown", "released"])
    made = clients(absent, back)
    said: list[tuple[str, str]] = []
    status = await decided_new(said)
    assert status.state == "released"
    assert made[:2] == [absent, back]
    assert absent.asked == ["capture.submit", "capture.job.status"]
    assert back.asked == ["capture.job.status", "capture.submit", "capture.job.status"]
    assert ("INFO", "Platen is unreachable; holding the job and retrying") in said


async def test_on_the_agents_shared_connection_a_job_listens_under_the_print_servers_keys(
    monkeypatch,
):
    """The agent's connection serves every job: its reply queue is bound once under all
    the print server's decision keys (`decisions_of`), so a job adds only its listener, and
    takes it away after (the binding stays for the next job)."""
    monkeypatch.setattr(main, "FALLBACK_CHECK", 3600.0)
    client = FakeClient(["captured"])

    @asynccontextmanager
    async def session():
        yield client

    config = BackendConfig(PRINT_SERVER, "lab", {})
    waiting = asyncio.create_task(
        main.capture_and_wait(config, PrinterPolicy(), submission(), session=session, new=True)
    )
    await wait_until_waiting(client)
    assert list(client.listening) == [decision_key("lab", JOB)]
    assert client.under == decisions_of("lab")
    client.push(JobStatus(job_id=JOB, state="released"))
    assert (await asyncio.wait_for(waiting, DEADLINE)).state == "released"
    assert client.listening == {}
