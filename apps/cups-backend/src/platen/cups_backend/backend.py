"""The `platen` CUPS backend: every job goes through Platen before it reaches a printer.

A queue whose device URI is `platen:/<real device URI>` runs this backend. It hands the
job to job-capture, waits for Platen's decision, and only when the job is released runs
the real backend on the same document; then it reports what the printer did. A denied,
cancelled or expired job is cancelled in CUPS with the reason as its state message.

CUPS starts this program once per job, so it stays small: it prepares the document
itself, then hands the talking to Platen (the status question, the submission, the wait
for the decision, heartbeats, the outcome) to the print server's agent over a Unix socket
(`agent`, `agent_link`), which has Python, the contract and a broker connection ready.
This module and what it imports on that path are standard library only, and few of them:
a job's start is a Python start, paid each time (bench/README.md, cups_latency.py). When
the agent is not running, refuses it or stops mid-job, the backend does the rest itself
(`main`, imported then): nothing is lost, and a job is never printed before Platen
releases it.

Exit codes are CUPS's (cups/backend.h).
"""

from __future__ import annotations

import os
import sys
import uuid

from platen.cups_backend import job_ids, timings
from platen.cups_backend.agent_link import PROTOCOL, AgentGone, AgentLink
from platen.cups_backend.as_sent import prepare
from platen.cups_backend.config import BackendConfig, PrinterPolicy, load
from platen.cups_backend.decisions import (
    CANCEL,
    FAILED,
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
from platen.cups_backend.options import as_printed, filter_work, job_options
from platen.cups_backend.postscript import ConversionFailed
from platen.cups_backend.scratch import scratch_folder
from platen.cups_backend.termination import AFTER_SIGTERM_SECONDS, TERMINATION, Terminated


def with_site_packages() -> None:
    """Make the installed packages importable: the broker client, the contract, the rest
    of Platen. The wrapper cupsd runs may start Python without them (`python -S`, its
    PYTHONPATH naming only the backend's own folder), which saves every job the
    interpreter's scan of site-packages; only a job done without the agent needs them."""
    global _site_added
    if sys.flags.no_site and not _site_added:
        import site

        site.main()
        _site_added = True


_site_added = False


def on_its_own():  # -> the `main` module
    """What the backend talks to Platen with when the agent does not answer."""
    with_site_packages()
    from platen.cups_backend import main

    return main


def while_waiting() -> None:
    """Imports the job needs only once Platen has decided (running the printer's
    backend): made while the agent works on the decision, not after it."""
    from platen.cups_backend import printing  # noqa: F401


class Platen:
    """Platen as this backend reaches it: through the agent while it answers, else on a
    broker connection of the backend's own (the code path of before the agent).

    Every request may be made again safely: a status question comes before a submission,
    a repeated outcome or cancellation is answered as the first was. So a request the
    agent took and then died on is simply made again by the backend itself."""

    def __init__(self, config: BackendConfig) -> None:
        self.config = config
        self.agent_said = ""
        try:
            self.link = AgentLink.open(config.agent_socket)
        except AgentGone as exc:
            say("WARNING", f"Platen: not using the print server's agent ({exc})")
            self.link = None

    def __enter__(self) -> Platen:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        if self.link is not None:
            self.link.close()
            self.link = None

    def _agent(self, op: str, meanwhile=None, **fields: object) -> dict[str, object] | None:
        """The agent's answer, or None when the backend must do it itself. `meanwhile`
        runs once the request is sent, before the answer is read."""
        if self.link is None:
            return None
        try:
            return self.link.call(op, say, timings.mark, meanwhile=meanwhile, **fields)
        except AgentGone as exc:
            # Said to cupsd's log: an operator sees jobs costing a Python start again.
            say("WARNING", f"Platen: the print server's agent is not answering ({exc})")
            self.close()
            return None

    def login(self, user: str) -> str | None:
        answer = self._agent("login", protocol=PROTOCOL, user=user)
        if answer is not None:
            return answer.get("login")
        with_site_packages()
        from platen.events.base import canonical_login

        return canonical_login(user, self.config.login_domains)

    def decide(
        self, policy: PrinterPolicy, fields: dict[str, object], document: str, *, new: bool
    ) -> Decision:
        answer = self._agent(
            "decide",
            meanwhile=while_waiting,
            fields=fields,
            document=document,
            policy=policy._asdict(),
            new=new,
        )
        if answer is not None:
            return answered(answer)
        import asyncio

        main = on_its_own()
        with open(document, "rb") as file:
            data = file.read()
        return asyncio.run(main.decide(self.config, policy, fields, data, new=new))

    def heartbeat(self, job_id: uuid.UUID) -> None:
        """One heartbeat; a failure is only logged (see `printing`)."""
        answer = self._agent("heartbeat", job_id=str(job_id))
        if answer is not None:
            if "error" in answer:
                say("DEBUG", f"Platen: heartbeat not delivered ({answer['error']})")
            return
        import asyncio

        main = on_its_own()
        try:
            asyncio.run(main.heartbeat(self.config, job_id))
        except Exception as exc:
            say("DEBUG", f"Platen: heartbeat not delivered ({type(exc).__name__}: {exc})")

    def report(self, outcome: dict[str, object], wait: float) -> None:
        answer = self._agent("report", outcome=outcome, wait=wait)
        if answer is not None:
            answered(answer)
            return
        import asyncio

        main = on_its_own()
        asyncio.run(main.report(self.config, outcome, wait))

    def cancel(self, job_id: uuid.UUID, wait: float) -> str:
        answer = self._agent("cancel", job_id=str(job_id), wait=wait)
        if answer is not None:
            return answered(answer).state
        import asyncio

        main = on_its_own()
        return asyncio.run(main.cancel(self.config, job_id, wait))


def answered(answer: dict[str, object]) -> Decision:
    """The agent's answer as the backend's own calls would give it."""
    if "offline" in answer:
        raise Offline(answer["offline"])
    if "refused_job" in answer:
        raise Refused(answer["refused_job"])
    if "invalid" in answer:
        raise Invalid(answer["invalid"])
    return Decision(str(answer.get("state", "")), answer.get("reason"))


def read_ppd() -> str | None:
    """The queue's PPD, which says whether the filters make the copies (None if none)."""
    path = os.environ.get("PPD")
    try:
        if not path:
            return None
        with open(path, errors="replace") as file:
            return file.read()
    except OSError:
        return None


def copy(source, out) -> None:
    """Copy one open file into another (`shutil.copyfileobj`, without importing `shutil`
    on every job)."""
    while chunk := source.read(1 << 20):
        out.write(chunk)


def handle_job(args: list[str], platen: Platen) -> int:
    cups_job, user, title, copies, options = args[:5]
    device_uri = os.environ.get("DEVICE_URI", "")
    inner_uri = device_uri.removeprefix("platen:/").removeprefix("platen:")
    printer = os.environ.get("PRINTER", "unknown")
    config = platen.config
    policy = config.policy(printer)
    login = platen.login(user)
    if login is None:
        # Nobody could be charged for it: cancelled before anything is read or sent.
        say("ERROR", f"Platen cannot charge this job: {user!r} is not a login Platen knows")
        return CANCEL

    with scratch_folder() as tmp:
        # The real backend needs the document as a file; CUPS may hand it over on stdin.
        document = os.path.join(tmp, "document")
        with open(document, "wb") as out:
            if len(args) >= 6:
                with open(args[5], "rb") as source:
                    copy(source, out)
            else:
                copy(sys.stdin.buffer, out)
        size = os.path.getsize(document)
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
        fields = {
            "job_id": str(job_id),
            "user": login,
            "printer": printer,
            "document_name": (title or opts.document_name or "untitled")[:200],
            "copies": opts.copies,
            "duplex": opts.duplex,
            "number_up": opts.number_up,
            "color_mode": opts.color_mode,
            "media": opts.media,
            "origin_host": opts.origin_host,
            "cups_job_id": int(cups_job) if cups_job.isdigit() else None,
            "deadline_seconds": policy.deadline,
        }
        try:
            status = platen.decide(policy, fields, document, new=job_ids.claimed_new())
        except Invalid as exc:
            say("ERROR", f"Platen cannot charge this job: {exc}")
            return CANCEL
        except Offline as exc:
            if exc.args[0] == "deny":
                say("ERROR", "Platen is unreachable, and this printer cancels jobs then")
                return CANCEL
            say("ERROR", "Platen is unreachable; the job is held for later")
            return HOLD
        except Refused as exc:
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
            return cancel_at_platen(platen, job_id)  # cancelled before the printer started
        say("INFO", "Released by Platen; printing")
        # The real backend is told the copies left to make: none when the document holds
        # them all already (it gets the document as a file, so it would repeat it).
        inner_args = [*args[:3], str(opts.copies), sent.inner_options]
        from platen.cups_backend.printing import run_with_heartbeat  # see while_waiting

        code = run_with_heartbeat(
            inner_uri,
            inner_args,
            document,
            termination=TERMINATION,
            heartbeat=lambda: platen.heartbeat(job_id),
            interval=config.heartbeat_seconds,
            say=say,
        )
    interrupted = TERMINATION.received
    if code in NOT_FINAL and not interrupted:
        return code
    outcome = {
        "job_id": str(job_id),
        "printed": code == OK or interrupted,
        "reason": (
            "cancelled in CUPS while the printer was being sent the job"
            if interrupted
            else None
            if code == OK
            else f"the printer's backend failed (status {code})"
        ),
        "interrupted": interrupted,
    }
    # The printer has acted: whatever the printer's offline policy, keep trying to tell
    # Platen, or the print goes uncharged (or a failed job stays held). After a SIGTERM,
    # only until cupsd's SIGKILL: a job never reported is charged as unconfirmed anyway.
    wait = AFTER_SIGTERM_SECONDS if interrupted else max(policy.offline_wait, 3600.0)
    try:
        platen.report(outcome, wait)
    except (Offline, Refused) as exc:
        say("ERROR", f"Platen: the outcome could not be reported ({exc})")
    if interrupted:
        say("INFO", "Platen: cancelled while printing; charged as printed")
        return OK
    return code


def cancel_at_platen(platen: Platen, job_id: uuid.UUID | None) -> int:
    """CUPS cancelled the job before the printer was sent any of it: tell Platen, which
    cancels it and releases its hold (nothing is charged). A job Platen is not told about
    (unreachable until cupsd's SIGKILL) is cancelled at its deadline, or charged as
    unconfirmed if it was released meanwhile: an administrator may refund it."""
    TERMINATION.defer()
    if job_id is None:
        return CANCEL  # Platen never saw it
    try:
        state = platen.cancel(job_id, AFTER_SIGTERM_SECONDS)
    except (Offline, Refused) as exc:
        say("ERROR", f"Platen: the cancellation could not be reported ({exc})")
        return CANCEL
    say("INFO", f"Platen: cancelled before printing; the job is {state}")
    return CANCEL


def run(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        from platen.cups_backend.devices import list_devices

        for line in list_devices():
            print(line)
        sys.exit(OK)
    if len(args) not in (5, 6):
        print("Usage: platen job-id user title copies options [file]", file=sys.stderr)
        sys.exit(FAILED)
    TERMINATION.install()
    timings.mark("imported")
    config = load()
    try:
        with Platen(config) as platen:
            code = handle_job(args, platen)
    except Terminated:
        # The conversation the SIGTERM cut short is closed (the agent stops waiting for
        # the decision); the cancellation is a request of its own.
        with Platen(config) as platen:
            code = cancel_at_platen(platen, TERMINATION.job_id)
    sys.exit(job_ids.settle(code, NOT_FINAL))


if __name__ == "__main__":
    run()
