"""The `platen` CUPS backend: every job goes through Platen before it reaches a printer.

A queue whose device URI is `platen:/<real device URI>` runs this backend. It hands the
job to job-capture, waits for Platen's decision, and only when the job is released runs
the real backend on the same document; then it reports what the printer did. A denied,
cancelled or expired job is cancelled in CUPS with the reason as its state message.

Exit codes are CUPS's (cups/backend.h).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

from aio_pika.exceptions import AMQPError, ChannelInvalidStateError
from aiormq.exceptions import ChannelAccessRefused
from pydantic import ValidationError

from platen.cups_backend import job_ids, timings
from platen.cups_backend.as_sent import prepare
from platen.cups_backend.config import BackendConfig, PrinterPolicy, load
from platen.cups_backend.devices import list_devices
from platen.cups_backend.options import as_printed, filter_work, job_options
from platen.cups_backend.postscript import ConversionFailed
from platen.cups_backend.printing import run_with_heartbeat, send_heartbeat
from platen.cups_backend.termination import (
    AFTER_SIGTERM_SECONDS,
    TERMINATION,
    Terminated,
)
from platen.events.base import canonical_login
from platen.events.discovery import signed_in_as
from platen.events.jobs import CancelJob, GetJobStatus, JobStatus, ReportOutcome, SubmitJob
from platen.events.routing import decision_key, print_server_of
from platen.rpc import RequestFailed, connect

OK, FAILED, HOLD, CANCEL = 0, 1, 3, 5
# What the real backend's exit status says about the job: printed, failed for good, or
# not yet decided (the printer is busy or stopped; CUPS will run the job again, and the
# job stays released so that the next run prints it).
NOT_FINAL = {2, 3, 4, 6, 7}
FINAL = {"released", "printed", "denied", "cancelled", "failed", "unconfirmed"}
# Released to the printer: "unconfirmed" is a released job charged already because its
# outcome never came (say CUPS ran it again much later); it prints, and is charged once.
PRINTABLE = {"released", "unconfirmed"}


def say(kind: str, text: str) -> None:
    """A line for cupsd: INFO sets the job's state message, ERROR goes to its log too."""
    print(f"{kind}: {text}", file=sys.stderr, flush=True)


class Offline(Exception):
    """Platen could not be reached for longer than the printer's policy allows."""


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
# A waiting backend is told its job's decision the moment it commits (job-capture pushes
# it under the job's decision key); it asks for the decision itself only this often, in
# case a push was lost (a job-capture process stopped between its commit and the push),
# or as often as its printer's offline limit, if shorter: only a question finds out that
# job-capture is not answering.
FALLBACK_CHECK = 30.0


def is_outage(exc: BaseException) -> bool:
    if isinstance(exc, RequestFailed):
        return any(text in str(exc) for text in OUTAGE_REPLIES)
    return isinstance(exc, OUTAGE_ERRORS)


class Outage:
    """Time without an answer from Platen, against the printer's offline limit: from the
    first failure (no broker, a dropped connection, no answer in time) until Platen
    answers. Time spent waiting for an answer that comes is not an outage."""

    def __init__(self, policy: PrinterPolicy) -> None:
        self.policy = policy
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
            say("INFO", "Platen is unreachable; holding the job and retrying")
            say("DEBUG", f"Platen: {type(exc).__name__}: {exc}")
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
):
    """Send `request` until Platen answers; Offline when it stays unreachable too long."""
    outage = Outage(policy)
    while True:
        try:
            async with connect(config.amqp_url) as client:
                return await client.request(
                    routing_key, request, timeout=timeout, correlation_id=str(request.job_id)
                )
        except Exception as exc:
            await outage.failed(exc)


class Wake:
    """What ends a wait for the decision early: the job's decision pushed, or the
    connection lost (then the next question fails, and the backend reconnects)."""

    def __init__(self) -> None:
        self.event = asyncio.Event()

    def __call__(self, *_: object) -> None:
        self.event.set()

    async def wait(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.event.wait(), timeout)
        self.event.clear()


def read_ppd() -> str | None:
    """The queue's PPD, which says whether the filters make the copies (None if none)."""
    path = os.environ.get("PPD")
    try:
        return Path(path).read_text(errors="replace") if path else None
    except OSError:
        return None


def handle_job(args: list[str]) -> int:
    cups_job, user, title, copies, options = args[:5]
    device_uri = os.environ.get("DEVICE_URI", "")
    inner_uri = device_uri.removeprefix("platen:/").removeprefix("platen:")
    printer = os.environ.get("PRINTER", "unknown")
    config = load()
    policy = config.policy(printer)
    login = canonical_login(user, config.login_domains)
    if login is None:
        # Nobody could be charged for it: cancelled before anything is read or sent.
        say("ERROR", f"Platen cannot charge this job: {user!r} is not a login Platen knows")
        return CANCEL

    with tempfile.TemporaryDirectory(prefix="platen-") as tmp:
        # The real backend needs the document as a file; CUPS may hand it over on stdin.
        document = Path(tmp) / "document"
        with document.open("wb") as out:
            if len(args) >= 6:
                with open(args[5], "rb") as source:
                    shutil.copyfileobj(source, out)
            else:
                shutil.copyfileobj(sys.stdin.buffer, out)
        size = document.stat().st_size
        if size > config.max_document_bytes:
            # The same refusal as job-capture's, before the broker refuses the message
            # (which would look like Platen being down).
            reason = (
                f"the document is too large ({size} bytes; "
                f"the limit is {config.max_document_bytes})"
            )
            say("INFO", f"Platen: {reason}")
            say("ERROR", f"Platen did not accept the job: {reason}")
            return CANCEL
        asked = job_options(copies, options)
        # Charge the document as it will print: N-up or copies the filters already did
        # are neither charged again nor (for copies) printed again.
        work = filter_work(os.environ, read_ppd())
        opts = as_printed(asked, work)
        say(
            "DEBUG",
            f"Platen: copies {asked.copies}, number-up {asked.number_up} asked; "
            f"filters imposed N-up: {work.imposed}, made copies: {work.copies_made}",
        )
        # What the printer is sent is what is charged: a raw job's price-lowering options
        # are dropped, and PostScript is run once, here (see as_sent).
        try:
            sent = prepare(
                document, os.environ, read_ppd(), opts, options, max_bytes=config.max_document_bytes
            )
        except ConversionFailed as exc:
            say("INFO", f"Platen: {exc}")
            say("ERROR", f"Platen did not accept the job: {exc}")
            return CANCEL
        document, opts = sent.document, sent.options
        if sent.content_type:
            os.environ["FINAL_CONTENT_TYPE"] = sent.content_type  # read by the real backend
        # Random, and kept on the print server: a backend that CUPS runs again for the same
        # job resumes the same Platen job instead of capturing it twice (job_ids).
        job_id = job_ids.claim(config.state_dir, printer, cups_job, options)
        TERMINATION.job_id = job_id  # a SIGTERM from here on cancels it at Platen too
        # Every run of this CUPS job prints (and submits) the document its first run
        # prepared, which is the one Platen analysed.
        document = job_ids.kept_document(document)
        timings.mark("prepared")
        try:
            submit = SubmitJob(
                job_id=job_id,
                user=login,
                printer=printer,
                document_name=(title or opts.document_name or "untitled")[:200],
                document=base64.b64encode(document.read_bytes()),
                copies=opts.copies,
                source="cups",
                duplex=opts.duplex,
                number_up=opts.number_up,
                color_mode=opts.color_mode,
                media=opts.media,
                origin_host=opts.origin_host,
                cups_job_id=int(cups_job) if cups_job.isdigit() else None,
                deadline_seconds=policy.deadline,
            )
        except ValidationError as exc:
            say("ERROR", f"Platen cannot charge this job: {exc.errors()[0]['msg']}")
            return CANCEL
        try:
            status = asyncio.run(capture_and_wait(config, policy, submit))
        except Offline as exc:
            if exc.args[0] == "deny":
                say("ERROR", "Platen is unreachable, and this printer cancels jobs then")
                return CANCEL
            say("ERROR", "Platen is unreachable; the job is held for later")
            return HOLD
        except RequestFailed as exc:
            say("ERROR", f"Platen refused the job: {exc}")
            return CANCEL

        say("DEBUG", f"Platen: timings {timings.summary()}")
        if status.state == "printed":
            return OK  # printed and reported before this backend was restarted
        if status.state not in PRINTABLE:
            reason = status.reason or f"the job was {status.state}"
            say("INFO", f"Platen: {reason}")
            say("ERROR", f"Platen did not release the job: {reason}")
            return CANCEL

        # From here a SIGTERM (CUPS `cancel`) stops the printer's backend and the job is
        # reported as interrupted: charged, as the printer may have some of it.
        TERMINATION.defer()
        if TERMINATION.received:
            return cancel_at_platen(config, job_id)  # cancelled before the printer started
        say("INFO", "Released by Platen; printing")
        # The real backend is told the copies left to make: none when the document holds
        # them all already (it gets the document as a file, so it would repeat it).
        inner_args = [*args[:3], str(opts.copies), sent.inner_options]
        code = run_with_heartbeat(
            inner_uri,
            inner_args,
            document,
            termination=TERMINATION,
            heartbeat=lambda: send_heartbeat(config.amqp_url, job_id, say),
            interval=config.heartbeat_seconds,
            say=say,
        )
    interrupted = TERMINATION.received
    if code in NOT_FINAL and not interrupted:
        return code
    outcome = ReportOutcome(
        job_id=job_id,
        printed=code == OK or interrupted,
        reason=(
            "cancelled in CUPS while the printer was being sent the job"
            if interrupted
            else None
            if code == OK
            else f"the printer's backend failed (status {code})"
        ),
        interrupted=interrupted,
    )
    # The printer has acted: whatever the printer's offline policy, keep trying to tell
    # Platen, or the print goes uncharged (or a failed job stays held). After a SIGTERM,
    # only until cupsd's SIGKILL: a job never reported is charged as unconfirmed anyway.
    wait = AFTER_SIGTERM_SECONDS if interrupted else max(policy.offline_wait, 3600.0)
    reporting = PrinterPolicy(offline="hold", offline_wait=wait)
    try:
        asyncio.run(ask(config, reporting, outcome, "capture.job.outcome"))
    except (Offline, RequestFailed) as exc:
        say("ERROR", f"Platen: the outcome could not be reported ({exc})")
    if interrupted:
        say("INFO", "Platen: cancelled while printing; charged as printed")
        return OK
    return code


def cancel_at_platen(config: BackendConfig, job_id: uuid.UUID | None) -> int:
    """CUPS cancelled the job before the printer was sent any of it: tell Platen, which
    cancels it and releases its hold (nothing is charged). A job Platen is not told about
    (unreachable until cupsd's SIGKILL) is cancelled at its deadline, or charged as
    unconfirmed if it was released meanwhile: an administrator may refund it."""
    TERMINATION.defer()
    if job_id is None:
        return CANCEL  # Platen never saw it
    policy = PrinterPolicy(offline="hold", offline_wait=AFTER_SIGTERM_SECONDS)
    try:
        status = asyncio.run(ask(config, policy, CancelJob(job_id=job_id), "capture.job.cancel"))
    except (Offline, RequestFailed) as exc:
        say("ERROR", f"Platen: the cancellation could not be reported ({exc})")
        return CANCEL
    say("INFO", f"Platen: cancelled before printing; the job is {status.state}")
    return CANCEL


async def capture_and_wait(
    config: BackendConfig, policy: PrinterPolicy, submit: SubmitJob
) -> JobStatus:
    """Submit the job (unless Platen has it already) and wait for its decision.

    One connection for it all. Its reply queue is bound under the job's decision key
    before the first question, so a decision that commits after that question is pushed
    to it (job-capture's `decisions`). A push only wakes the wait: the backend then asks
    for the job's status, so a push that is late, repeated or lost costs time at most
    (FALLBACK_CHECK). An outage (no broker, a connection lost) holds the job and
    reconnects, until the printer's offline limit counts only time without an answer.
    """
    query = GetJobStatus(job_id=submit.job_id)
    job = str(submit.job_id)
    name = print_server_of(signed_in_as(config.amqp_url))
    pushed = name is not None
    if not pushed:
        say("WARNING", "Platen: not signed in as a print server; checking for decisions slowly")
    submitted = False
    shown = None
    outage = Outage(policy)
    while True:
        try:
            async with connect(config.amqp_url) as client:
                timings.mark("connected")
                wake = Wake()
                client.connection.close_callbacks.add(wake)
                if pushed and name is not None:
                    try:
                        await client.listen(decision_key(name, submit.job_id), wake)
                    except ChannelAccessRefused:
                        # The broker does not let this identity bind its decision keys (a
                        # print server made before they existed: `platenctl printserver
                        # add` again grants it). Waits, slowly, without them.
                        say("WARNING", "Platen: decisions are not pushed to this print server")
                        pushed = False
                        continue
                while True:
                    status = await client.request(
                        "capture.job.status", query, timeout=QUERY_TIMEOUT, correlation_id=job
                    )
                    outage.answered()
                    if status.state == "unknown" and not submitted:
                        # Asked first: it finds out within the offline limit whether Platen
                        # is there at all, before the long wait for the analysis; and a
                        # backend that CUPS runs again for the same job resumes it without
                        # sending the document again.
                        await client.request(
                            "capture.submit", submit, timeout=SUBMIT_TIMEOUT, correlation_id=job
                        )
                        submitted = True
                        timings.mark("submitted")
                        continue
                    if status.state in FINAL or status.state == "unknown":
                        timings.mark("decided")
                        return status
                    if status.state != shown:
                        say("INFO", "Waiting for Platen to authorise the job")
                        shown = status.state
                    await wake.wait(min(FALLBACK_CHECK, outage.limit))
        except Exception as exc:
            await outage.failed(exc)


def run(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        for line in list_devices():
            print(line)
        sys.exit(OK)
    if len(args) not in (5, 6):
        print("Usage: platen job-id user title copies options [file]", file=sys.stderr)
        sys.exit(FAILED)
    TERMINATION.install()
    timings.mark("imported")
    try:
        code = handle_job(args)
    except Terminated:
        code = cancel_at_platen(load(), TERMINATION.job_id)
    sys.exit(job_ids.settle(code, NOT_FINAL))


if __name__ == "__main__":
    run()
