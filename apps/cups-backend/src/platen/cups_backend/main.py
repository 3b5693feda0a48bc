"""The `platen` backend's conversation with Platen over the broker: the status question,
the submission, the wait for the decision, the heartbeats, the outcome and a cancellation.

The print server's agent (`agent`) runs these on its one broker connection for every
job; the backend (`backend`) runs them itself, on a connection of its own, when the agent
does not answer. `python -m platen.cups_backend.main` still runs the backend (`backend`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from aio_pika.abc import AbstractIncomingMessage
from aio_pika.exceptions import AMQPError, ChannelInvalidStateError
from aiormq.exceptions import ChannelAccessRefused
from pydantic import ValidationError

from platen.cups_backend import timings
from platen.cups_backend.config import BackendConfig, PrinterPolicy
from platen.cups_backend.decisions import (
    CANCEL,
    FAILED,
    FINAL,
    HOLD,
    NOT_FINAL,
    OK,
    PRINTABLE,
    Decision,
    Invalid,
    Offline,
    Refused,
    say,
)
from platen.events.base import HEADER_VERSION
from platen.events.discovery import signed_in_as
from platen.events.jobs import (
    CancelJob,
    GetJobStatus,
    JobStatus,
    KeepJobAlive,
    ReportOutcome,
    SubmitJob,
)
from platen.events.registry import decode
from platen.events.routing import decision_key, decisions_of, print_server_of
from platen.rpc import Client, RequestFailed, connect

__all__ = [
    "CANCEL",
    "FAILED",
    "FINAL",
    "HOLD",
    "NOT_FINAL",
    "OK",
    "PRINTABLE",
    "Offline",
    "ask",
    "capture_and_wait",
    "decide",
]

Say = Callable[[str, str], None]
Mark = Callable[[str], None]
# Where requests go: a connection of the backend's own for one job (`connect`), or the
# agent's connection, shared by every job (`agent.SharedConnection.lease`).
Session = Callable[[], AbstractAsyncContextManager[Client]]

# Longest wait for job-capture's answer to one heartbeat.
HEARTBEAT_TIMEOUT = 10.0


# What an outage looks like from here: no broker, a connection or channel that drops while
# a request is out (a broker restart), or a service that does not answer. Anything else
# (Platen answering with an error) is not an outage.
OUTAGE_ERRORS = (AMQPError, ChannelInvalidStateError, OSError, TimeoutError)
OUTAGE_REPLIES = ("nothing handles", "no answer", "cannot reach")
# Time to wait for an answer to a request that is not an outage: job-capture answers a
# status query at once, but answers a submission only after analysing the document, which
# may take up to its analysis timeout (120 s).
QUERY_TIMEOUT = 15.0
SUBMIT_TIMEOUT = 180.0
# A new job is submitted without a question first; if its submission has no answer after
# this long (most are answered within a tenth of a second: the analysis of a short
# document), the backend asks whether Platen answers at all, as the question first would.
WATCH_AFTER = 2.0
# A waiting backend is told its job's decision the moment it commits (job-capture pushes
# it under the job's decision key); it asks for the decision itself only this often, in
# case a push was lost (a job-capture process stopped between its commit and the push),
# or as often as its printer's offline limit, if shorter: only a question finds out that
# job-capture is not answering.
FALLBACK_CHECK = 30.0


def own_connection(config: BackendConfig) -> Session:
    """A connection for one job, closed after it (the backend without its agent)."""
    return lambda: connect(config.amqp_url)


def is_outage(exc: BaseException) -> bool:
    if isinstance(exc, RequestFailed):
        return any(text in str(exc) for text in OUTAGE_REPLIES)
    return isinstance(exc, OUTAGE_ERRORS)


class Outage:
    """Time without an answer from Platen, against the printer's offline limit: from the
    first failure (no broker, a dropped connection, no answer in time) until Platen
    answers. Time spent waiting for an answer that comes is not an outage."""

    def __init__(self, policy: PrinterPolicy, say: Say = say) -> None:
        self.policy = policy
        self.say = say
        self.since: float | None = None
        self.delay = 0.5

    @property
    def limit(self) -> float:
        """How long Platen may be unreachable before the policy acts."""
        policy = self.policy
        return policy.offline_grace if policy.offline == "deny" else policy.offline_wait

    def answered(self) -> None:
        self.since, self.delay = None, 0.5

    async def failed(self, exc: Exception) -> None:
        """Wait before the next try; re-raises what is not an outage, Offline past the
        limit."""
        if not is_outage(exc):
            raise exc  # Platen answered with an error: not an outage
        if self.since is None:
            self.since = time.monotonic()
            self.say("INFO", "Platen is unreachable; holding the job and retrying")
            self.say("DEBUG", f"Platen: {type(exc).__name__}: {exc}")
        if time.monotonic() - self.since > self.limit:
            raise Offline(self.policy.offline) from None
        await asyncio.sleep(self.delay)
        self.delay = min(self.delay * 2, 5.0)


async def ask(
    config: BackendConfig,
    policy: PrinterPolicy,
    request,
    routing_key: str,
    *,
    timeout: float = QUERY_TIMEOUT,
    session: Session | None = None,
    say: Say = say,
):
    """Send `request` until Platen answers; Offline when it stays unreachable too long."""
    outage = Outage(policy, say)
    open_session = session or own_connection(config)
    while True:
        try:
            async with open_session() as client:
                return await client.request(
                    routing_key, request, timeout=timeout, correlation_id=str(request.job_id)
                )
        except Exception as exc:
            await outage.failed(exc)


class Wake:
    """What ends a wait for the decision early: the job's decision pushed, or the
    connection lost (then the next question fails, and the backend reconnects)."""

    def __init__(self, job_id: uuid.UUID) -> None:
        self.event = asyncio.Event()
        self.job_id = job_id
        # The first decision pushed for this job: it is the decision (`pushed_decision`).
        self.decided: JobStatus | None = None

    def __call__(self, *_: object) -> None:
        self.event.set()

    def pushed(self, raw: AbstractIncomingMessage) -> None:
        """A push under the job's decision key (`Client.listen`)."""
        if self.decided is None:
            self.decided = pushed_decision(raw, self.job_id)
        self.event.set()

    async def wait(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.event.wait(), timeout)
        self.event.clear()


def pushed_decision(raw: AbstractIncomingMessage, job_id: uuid.UUID) -> JobStatus | None:
    """The decision a push carries, when it is one for this job; else None (then it only
    wakes the wait, and the backend asks). Taken as the answer to a status question would
    be: only job-capture may publish under decision keys (the broker's topic permissions,
    as only a service may answer under this print server's reply keys), and it pushes a
    job's state only once a decision (released, denied, cancelled) has committed. A job
    waiting for its decision can reach one such state only (job-capture's `domain`), and
    after it changes only by this backend's own report or an hour's release timeout
    (released to unconfirmed, which prints too), so a push that comes late, twice or out
    of order cannot tell a waiting backend anything but its decision."""
    try:
        status = decode(raw.type, (raw.headers or {}).get(HEADER_VERSION), raw.body)
    except Exception:
        return None  # not a message of the contract: a wake-up, no more
    if isinstance(status, JobStatus) and status.job_id == job_id and status.state in FINAL:
        return status
    return None


class PushRefused(Exception):
    """The broker refused to bind the job's decision key (and closed the channel)."""


@contextlib.asynccontextmanager
async def listening(
    client: Client, key: str | None, wake: Wake, shared: bool, under: str | None = None
) -> AsyncIterator[None]:
    """Wake on a lost connection and on the job's decision pushed under `key`. On a
    shared connection both are undone after the job: the connection serves other jobs,
    and its reply queue stays bound under `under` (all the print server's decision keys,
    bound at its first job) so that no job waits for a binding of its own."""
    client.connection.close_callbacks.add(wake)
    try:
        if key is not None:
            try:
                await client.listen(key, wake.pushed, under=under)
            except ChannelAccessRefused:
                raise PushRefused from None
        yield
    finally:
        if shared:
            client.connection.close_callbacks.discard(wake)
            if key is not None:
                with contextlib.suppress(Exception):
                    await client.unlisten(key)


async def capture_and_wait(
    config: BackendConfig,
    policy: PrinterPolicy,
    submit: SubmitJob,
    *,
    session: Session | None = None,
    say: Say = say,
    mark: Mark = timings.mark,
    new: bool = False,
) -> JobStatus:
    """Submit the job (unless Platen has it already) and wait for its decision.

    One connection for it all. Its reply queue is bound under the job's decision key
    before the first question, so a decision that commits after that question is pushed
    to it (job-capture's `decisions`). A push that carries the job's decision ends the
    wait with it (`pushed_decision`); anything else pushed only wakes it, and the backend
    asks for the job's status; a lost push costs time at most (FALLBACK_CHECK). An outage
    (no broker, a connection lost) holds the job and reconnects, until the printer's
    offline limit counts only time without an answer.
    `session`: the agent's shared connection instead of one of the job's own. `new`: the
    job's id was made by this run of the backend (`job_ids.claimed_new`), so Platen cannot
    know the job yet: its first attempt submits at once, without the question first
    (`submit_watched`), which saves a round trip on every new job.
    """
    query = GetJobStatus(job_id=submit.job_id)
    job = str(submit.job_id)
    name = print_server_of(signed_in_as(config.amqp_url))
    pushed = name is not None
    if not pushed:
        say("WARNING", "Platen: not signed in as a print server; checking for decisions slowly")
    submitted = False
    shown = None
    outage = Outage(policy, say)
    open_session = session or own_connection(config)
    while True:
        try:
            async with open_session() as client:
                mark("connected")
                wake = Wake(submit.job_id)
                key = decision_key(name, submit.job_id) if pushed and name is not None else None
                # On the agent's shared connection: bound once for all its jobs.
                under = decisions_of(name) if session is not None and name is not None else None
                try:
                    async with listening(client, key, wake, session is not None, under):
                        if new and not submitted:
                            # Its first attempt only: after an outage the submission may
                            # be waiting in Platen's queue, and the question comes first.
                            new = False
                            mark("asked")  # no question: the step takes no time
                            await submit_watched(client, submit, query, outage, job)
                            submitted = True
                            mark("submitted")
                        while True:
                            status = await client.request(
                                "capture.job.status",
                                query,
                                timeout=QUERY_TIMEOUT,
                                correlation_id=job,
                            )
                            outage.answered()
                            mark("asked")  # the first answer: a status question's cost
                            if status.state == "unknown" and not submitted:
                                # Asked first: it finds out within the offline limit whether
                                # Platen is there at all, before the long wait for the
                                # analysis; and a backend that CUPS runs again for the same
                                # job resumes it without sending the document again.
                                await client.request(
                                    "capture.submit",
                                    submit,
                                    timeout=SUBMIT_TIMEOUT,
                                    correlation_id=job,
                                )
                                submitted = True
                                mark("submitted")
                                continue
                            if status.state in FINAL or status.state == "unknown":
                                mark("decided")
                                return status
                            if status.state != shown:
                                say("INFO", "Waiting for Platen to authorise the job")
                                shown = status.state
                            await wake.wait(min(FALLBACK_CHECK, outage.limit))
                            mark("woken")  # the first push (or check)
                            if wake.decided is not None:
                                # The decision itself was pushed: no question after it.
                                mark("decided")
                                return wake.decided
                except PushRefused:
                    # The broker does not let this identity bind its decision keys (a print
                    # server made before they existed: `platenctl printserver add` again
                    # grants it), and closed the channel. Waits, slowly, without them.
                    say("WARNING", "Platen: decisions are not pushed to this print server")
                    pushed = False
                    continue
        except Exception as exc:
            await outage.failed(exc)


async def submit_watched(
    client: Client, submit: SubmitJob, query: GetJobStatus, outage: Outage, job: str
) -> None:
    """Submit a new job; while its answer does not come (it follows the document's
    analysis), ask every WATCH_AFTER whether Platen answers at all. A question without an
    answer is an outage, found as soon as by a question asked first (WATCH_AFTER more at
    most); one that is answered means Platen is at work on the job, and the wait goes on.
    The submission's answer ends the wait at once, even with a question still open (whose
    answer, or its lack, then says nothing)."""
    sent = asyncio.ensure_future(
        client.request("capture.submit", submit, timeout=SUBMIT_TIMEOUT, correlation_id=job)
    )
    question: asyncio.Future | None = None
    try:
        while True:
            if question is None:
                done, _ = await asyncio.wait({sent}, timeout=WATCH_AFTER)
                if done:
                    break
                question = asyncio.ensure_future(
                    client.request(
                        "capture.job.status", query, timeout=QUERY_TIMEOUT, correlation_id=job
                    )
                )
            done, _ = await asyncio.wait({sent, question}, return_when=asyncio.FIRST_COMPLETED)
            if sent in done:
                break
            question.result()  # no answer: an outage
            outage.answered()
            question = None
        sent.result()  # its error, if it failed
    finally:
        # Given up on (answered, an outage, or the job's own wait cancelled): their
        # outcomes are read, so asyncio reports no error that nobody retrieved.
        for task in (sent, question):
            if task is not None:
                task.cancel()
                task.add_done_callback(lambda t: t.cancelled() or t.exception())


def submission(fields: dict[str, Any], document: bytes) -> SubmitJob:
    """The submission of a job whose attributes the backend gathered (`backend.job_fields`);
    Invalid when Platen could not take them."""
    try:
        return SubmitJob(**fields, document=base64.b64encode(document), source="cups")
    except ValidationError as exc:
        raise Invalid(exc.errors()[0]["msg"]) from None


async def decide(
    config: BackendConfig,
    policy: PrinterPolicy,
    fields: dict[str, Any],
    document: bytes,
    *,
    session: Session | None = None,
    say: Say = say,
    mark: Mark = timings.mark,
    new: bool = False,
) -> Decision:
    """Platen's decision on the job: Offline, Refused or Invalid when there is none.
    `new`: Platen cannot know the job yet (`capture_and_wait`)."""
    submit = submission(fields, document)
    try:
        status = await capture_and_wait(
            config, policy, submit, session=session, say=say, mark=mark, new=new
        )
    except RequestFailed as exc:
        raise Refused(str(exc)) from None
    return Decision(status.state, status.reason)


async def heartbeat(
    config: BackendConfig, job_id: uuid.UUID, *, session: Session | None = None
) -> None:
    """One "still printing" message; an error or no answer raises (the caller logs it)."""
    open_session = session or own_connection(config)

    async def beat() -> None:
        async with open_session() as client:
            await client.request(
                "capture.job.heartbeat",
                KeepJobAlive(job_id=job_id),
                timeout=HEARTBEAT_TIMEOUT,
                correlation_id=str(job_id),
            )

    await asyncio.wait_for(beat(), HEARTBEAT_TIMEOUT + 5)


async def report(
    config: BackendConfig,
    outcome: dict[str, Any],
    wait: float,
    *,
    session: Session | None = None,
    say: Say = say,
) -> None:
    """Tell Platen what the printer did, trying for `wait` seconds; Offline or Refused."""
    reporting = PrinterPolicy(offline="hold", offline_wait=wait)
    try:
        await ask(
            config,
            reporting,
            ReportOutcome(**outcome),
            "capture.job.outcome",
            session=session,
            say=say,
        )
    except RequestFailed as exc:
        raise Refused(str(exc)) from None


async def cancel(
    config: BackendConfig,
    job_id: uuid.UUID,
    wait: float,
    *,
    session: Session | None = None,
    say: Say = say,
) -> str:
    """Cancel the job at Platen (CUPS cancelled it before the printer had any); its state
    after. Offline or Refused."""
    policy = PrinterPolicy(offline="hold", offline_wait=wait)
    try:
        status = await ask(
            config, policy, CancelJob(job_id=job_id), "capture.job.cancel", session=session, say=say
        )
    except RequestFailed as exc:
        raise Refused(str(exc)) from None
    return status.state


if __name__ == "__main__":
    from platen.cups_backend.backend import run

    run()
