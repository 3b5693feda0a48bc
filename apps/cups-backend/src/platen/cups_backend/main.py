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
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from aio_pika.exceptions import AMQPError, ChannelInvalidStateError
from pydantic import ValidationError

from platen.cups_backend import job_ids
from platen.cups_backend.config import BackendConfig, PrinterPolicy, load
from platen.cups_backend.devices import backend_dir, list_devices
from platen.cups_backend.options import as_printed, filter_work, job_options
from platen.events.jobs import GetJobStatus, JobStatus, ReportOutcome, SubmitJob
from platen.rpc import RequestFailed, connect

OK, FAILED, HOLD, CANCEL = 0, 1, 3, 5
# What the real backend's exit status says about the job: printed, failed for good, or
# not yet decided (the printer is busy or stopped; CUPS will run the job again, and the
# job stays released so that the next run prints it).
NOT_FINAL = {2, 3, 4, 6, 7}
FINAL = {"released", "printed", "denied", "cancelled", "failed"}


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


def is_outage(exc: BaseException) -> bool:
    if isinstance(exc, RequestFailed):
        return any(text in str(exc) for text in OUTAGE_REPLIES)
    return isinstance(exc, OUTAGE_ERRORS)


async def ask(
    config: BackendConfig,
    policy: PrinterPolicy,
    request,
    routing_key: str,
    *,
    timeout: float = QUERY_TIMEOUT,
):
    """Send `request` until Platen answers; Offline when it stays unreachable too long.

    The printer's offline limit counts only time without an answer: from the first
    failure (no broker, a dropped connection, no answer within `timeout`) until Platen
    answers. Time spent waiting for an answer that comes is not an outage.
    """
    offline_since: float | None = None
    delay = 0.5
    while True:
        try:
            async with connect(config.amqp_url) as client:
                return await client.request(
                    routing_key, request, timeout=timeout, correlation_id=str(request.job_id)
                )
        except Exception as exc:
            if not is_outage(exc):
                raise  # Platen answered with an error: not an outage
            if offline_since is None:
                offline_since = time.monotonic()
                say("INFO", "Platen is unreachable; holding the job and retrying")
                say("DEBUG", f"Platen: {type(exc).__name__}: {exc}")
            limit = policy.offline_grace if policy.offline == "deny" else policy.offline_wait
            if time.monotonic() - offline_since > limit:
                raise Offline(policy.offline) from None
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


async def wait_for_decision(config, policy, job_id: uuid.UUID) -> JobStatus:
    shown = None
    delay = 0.1
    while True:
        status = await ask(config, policy, GetJobStatus(job_id=job_id), "capture.job.status")
        if status.state in FINAL or status.state == "unknown":
            return status
        if status.state != shown:
            say("INFO", "Waiting for Platen to authorise the job")
            shown = status.state
        await asyncio.sleep(delay)
        delay = min(delay * 1.5, 1.0)


def read_ppd() -> str | None:
    """The queue's PPD, which says whether the filters make the copies (None if none)."""
    path = os.environ.get("PPD")
    try:
        return Path(path).read_text(errors="replace") if path else None
    except OSError:
        return None


def run_inner(inner_uri: str, args: list[str], document: Path) -> int:
    scheme = inner_uri.split(":", 1)[0]
    backend = backend_dir() / scheme
    if not backend.exists():
        say("ERROR", f"Platen: no CUPS backend for {scheme!r}")
        return FAILED
    env = {**os.environ, "DEVICE_URI": inner_uri}
    # stdout and stderr pass through: cupsd reads the real backend's messages as ours.
    proc = subprocess.run(
        [inner_uri, *args[:5], str(document)], executable=str(backend), env=env, check=False
    )
    return proc.returncode


def handle_job(args: list[str]) -> int:
    cups_job, user, title, copies, options = args[:5]
    device_uri = os.environ.get("DEVICE_URI", "")
    inner_uri = device_uri.removeprefix("platen:/").removeprefix("platen:")
    printer = os.environ.get("PRINTER", "unknown")
    config = load()
    policy = config.policy(printer)

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
        # Random, and kept on the print server: a backend that CUPS runs again for the same
        # job resumes the same Platen job instead of capturing it twice (job_ids).
        job_id = job_ids.claim(config.state_dir, printer, cups_job, options)
        try:
            submit = SubmitJob(
                job_id=job_id,
                user=user,
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

        if status.state == "printed":
            return OK  # printed and reported before this backend was restarted
        if status.state != "released":
            reason = status.reason or f"the job was {status.state}"
            say("INFO", f"Platen: {reason}")
            say("ERROR", f"Platen did not release the job: {reason}")
            return CANCEL

        say("INFO", "Released by Platen; printing")
        # The real backend is told the copies left to make: none when the document holds
        # them all already (it gets the document as a file, so it would repeat it).
        inner_args = [*args[:3], str(opts.copies), args[4]]
        code = run_inner(inner_uri, inner_args, document)
    if code in NOT_FINAL:
        return code
    outcome = ReportOutcome(
        job_id=job_id,
        printed=code == OK,
        reason=None if code == OK else f"the printer's backend failed (status {code})",
    )
    # The printer has acted: whatever the printer's offline policy, keep trying to tell
    # Platen, or the print goes uncharged (or a failed job stays held).
    reporting = PrinterPolicy(offline="hold", offline_wait=max(policy.offline_wait, 3600.0))
    try:
        asyncio.run(ask(config, reporting, outcome, "capture.job.outcome"))
    except (Offline, RequestFailed) as exc:
        say("ERROR", f"Platen: the outcome could not be reported ({exc})")
    return code


async def capture_and_wait(
    config: BackendConfig, policy: PrinterPolicy, submit: SubmitJob
) -> JobStatus:
    # A quick question first: it finds out within the offline limit whether Platen is
    # there at all, before the long wait for the analysis; and a backend that CUPS runs
    # again for the same job resumes it without sending the document again.
    query = GetJobStatus(job_id=submit.job_id)
    status = await ask(config, policy, query, "capture.job.status")
    if status.state == "unknown":
        await ask(config, policy, submit, "capture.submit", timeout=SUBMIT_TIMEOUT)
    return await wait_for_decision(config, policy, submit.job_id)


def run(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        for line in list_devices():
            print(line)
        sys.exit(OK)
    if len(args) not in (5, 6):
        print("Usage: platen job-id user title copies options [file]", file=sys.stderr)
        sys.exit(FAILED)
    sys.exit(job_ids.settle(handle_job(args), NOT_FINAL))


if __name__ == "__main__":
    run()
