"""job-capture's domain: the Job aggregate and its state machine. Pure: no database, no
broker, no I/O. "What state can a job move to, and why" is answered here.

captured -> priced -> released -> printed | failed
   any waiting state -> denied | cancelled (a policy, the ledger, the user, the deadline)
   released -> cancelled      cancelled in CUPS before the printer was sent any of it
                              (only that report: see `can_move(..., printer_has_none=True)`)
   released -> unconfirmed    no outcome and no heartbeat by the release timeout: charged
   unconfirmed -> printed     the outcome came late: charged once, already

The point of charging: a released job is charged unless Platen knows the printer received
none of it. Only two reports say so: the printer's backend failed before the release
timeout ("failed"), or the job was cancelled before its backend started ("cancelled").

A job is cancelled in one place, `Job.cancel`, whoever asks: an event on the bus (the
ledger, the user), an administrator's command, the CUPS backend, or the job's deadline. Who asks
decides only what the job may be cancelled from and whether the cancel is news to publish.

Whose a job is (`identity`) and who may send job-capture a request (`senders`) are pure
rules of their own modules; the document's analysis is an adapter (`analysis`), its
layout on paper a pure helper (`layout`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Literal

from platen.events.base import Message
from platen.events.jobs import (
    JobCancelled,
    JobCaptured,
    JobDenied,
    JobFailed,
    JobPrinted,
    JobUnconfirmed,
    SubmitJob,
)
from platen.events.print_identity import DEFAULT_MODE, IdentityMode
from platen.job_capture.layout import layout

if TYPE_CHECKING:
    from platen.job_capture.analysis import Analysis

SERVICE = "job-capture"

FINAL = frozenset({"printed", "denied", "failed", "cancelled"})
WAITING = frozenset({"captured", "priced"})
# Released to the printer, not known to be printed: the CUPS backend prints these.
PRINTABLE = frozenset({"released", "unconfirmed"})

ALLOWED = {
    "captured": {"priced", "released", "denied", "cancelled"},
    "priced": {"released", "denied", "cancelled"},
    # A cancel from anyone else (the ledger, an event) finds the job at the printer.
    "released": {"printed", "failed", "unconfirmed"},
    "unconfirmed": {"printed"},
}
# Moves that only a report from the job's own CUPS backend makes, and only when it says the
# printer has none of the job: its printer's backend never started (no heartbeat yet).
IF_THE_PRINTER_HAS_NONE = {"released": {"cancelled"}}

# The reasons a job carries when Platen itself closes it.
EXPIRED = "nobody answered for this job before its deadline"
UNREPORTED = "the print server never reported whether the job printed: charged, as it may have"
INTERRUPTED = "cancelled in CUPS while the printer was being sent it: charged as printed"
LATE_FAILURE = (
    "the print server reported after the release timeout that the printer failed ({}); "
    "still charged: an administrator may refund it"
)
NOT_PRINTED = "the printer did not print the job"
NOT_ANALYSED = "the document could not be analysed"

# Who cancels a job: a `job.cancelled` on the bus (already public), the CUPS backend
# (`capture.job.cancel`), the job's deadline (expiry), or an administrator
# (`capture.job.admin_cancel`). The last three are news.
CancelledBy = Literal["event", "cups", "deadline", "admin"]
BY_AN_ADMINISTRATOR = "cancelled by an administrator"
# What a print server's report of the printer's outcome did to a job.
Outcome = Literal["printed", "failed", "late failure", "ignored"]


def can_move(current: str, target: str, *, printer_has_none: bool = False) -> bool:
    """Whether a job in `current` may move to `target`. `printer_has_none`: the job's CUPS
    backend reports that its printer's backend never started, which it alone can know."""
    if target in ALLOWED.get(current, set()):
        return True
    return printer_has_none and target in IF_THE_PRINTER_HAS_NONE.get(current, set())


def after_outcome(current: str, printed: bool) -> str | None:
    """The state the print server's report of what the printer did moves a job to; None
    when the report changes nothing.

    A late report on an unconfirmed job (already charged): "printed" closes it; "failed"
    leaves it charged and unconfirmed, because the release timeout has passed and Platen
    can no longer tell that report from one sent to avoid paying. An administrator sees
    the report in the job's reason and may refund it.
    """
    if current == "released":
        return "printed" if printed else "failed"
    if current == "unconfirmed" and printed:
        return "printed"
    return None


def cancelled_in_cups(current: str, printing_started: bool) -> bool:
    """Whether a cancel reported by the CUPS backend cancels the job, uncharged: only
    while the printer has none of it (still waiting for a decision, or released but its
    printer's backend not started: no heartbeat yet)."""
    return can_move(current, "cancelled", printer_has_none=not printing_started)


def cancelled_by_admin(reason: str | None) -> str:
    """The reason a job cancelled by an administrator carries: the user sees who did it."""
    return f"{BY_AN_ADMINISTRATOR}: {reason}" if reason else BY_AN_ADMINISTRATOR


def admin_may_not_cancel(state: str) -> str | None:
    """Why an administrator may not cancel a job in `state` (None: they may). Only a job
    still waiting for a decision: one sent to its printer may have printed, so cancelling
    it would let a printed job go free; it is refunded once charged instead."""
    if state in WAITING:
        return None
    if state in PRINTABLE:
        return (
            f"the job is {state}: it was sent to its printer and is charged if it printed; "
            "refund it once charged (platenctl refund)"
        )
    return f"the job is already {state}"


# PostScript is a program: it can print otherwise than it is analysed (it can tell the
# analysis's device from a printer, and a procedure it took by value from the analysis's
# colour-space defence is pushed where the printer's operator would run). A CUPS job's
# PostScript was run once on the print server, and what it drew is what is analysed and
# printed. An API job's document is never sent to a printer by Platen (the submitter
# prints its own copy), so nothing analysed here is sure to be what prints: it is refused
# (docs/security.md, "PostScript from the API").
POSTSCRIPT_FROM_API = (
    "PostScript is not accepted from the API (it may print otherwise than it is analysed):"
    " send PDF (convert it with ps2pdf and print that PDF), or print through a Platen print"
    " queue"
)


def refuse_format(document_format: str | None, source: str) -> str | None:
    """Why a document in this format is not analysed for a job from `source`, a quote's
    included ("api"); None: it is (`analysis.analyse` may still refuse it)."""
    if document_format == "postscript" and source != "cups":
        return POSTSCRIPT_FROM_API
    return None


def too_large(size: int, limit: int) -> str | None:
    """Why a document of `size` bytes is not analysed (None: it is)."""
    if size > limit:
        return f"the document is too large ({size} bytes; the limit is {limit})"
    return None


def marks_of(identity: str | None) -> dict[str, str]:
    """What marks a job (platen.messaging.marks): a job from a `trusted` queue, whose payer
    was taken on the print server's word, says so on every log line about it, everywhere."""
    return {"identity": "trusted"} if identity == "trusted" else {}


def identity_mode(stored: IdentityMode | None) -> tuple[IdentityMode, bool]:
    """A queue's identity mode and whether an administrator set it: a queue nobody set is
    `desktop`, never `trusted`."""
    return (stored, True) if stored else (DEFAULT_MODE, False)


class IllegalTransition(Exception):
    """The job may not move there from where it is; nothing about it changed."""

    def __init__(self, state: str, target: str) -> None:
        super().__init__(f"a {state} job cannot become {target}")
        self.state = state
        self.target = target


@dataclass(frozen=True)
class Document:
    """What the analysis found, laid out as the printer will produce one copy of it."""

    pages: int
    format: str
    color_pages: list[int]
    paper_sizes: dict[str, int]
    sides: int
    sheets: int
    side_groups: list[dict]
    analysis_ms: int

    @classmethod
    def laid_out(
        cls, analysis: Analysis, *, duplex: bool, number_up: int, color_mode: str
    ) -> Document:
        sheet = layout(analysis, duplex=duplex, number_up=number_up, color_mode=color_mode)
        return cls(
            pages=analysis.pages,
            format=analysis.format,
            color_pages=list(analysis.color_pages),
            paper_sizes=dict(sheet.paper_sizes),
            sides=sheet.sides,
            sheets=sheet.sheets,
            side_groups=[{"paper": p, "color": c, "count": n} for p, c, n in sheet.side_groups],
            analysis_ms=analysis.analysis_ms,
        )


# What job.captured says of the job besides its header and its document.
_ANNOUNCED_AT_CAPTURE = (
    "copies",
    "size_bytes",
    "duplex",
    "number_up",
    "color_mode",
    "identity",
    "origin_host",
)


@dataclass(eq=False)
class Job:
    """A print job as job-capture holds it. Its methods are its only transitions; each
    refuses an illegal move (`IllegalTransition`) and queues in `events` what the move
    tells the rest of Platen."""

    job_id: uuid.UUID
    user: str
    printer: str
    document_name: str
    state: str
    source: str = "api"
    copies: int = 1
    size_bytes: int = 0
    pages: int | None = None
    cost: Decimal | None = None
    reason: str | None = None
    identity: str | None = None
    # The print server that submitted it (None: an API job); only it may report on it.
    print_server: str | None = None
    # The CUPS backend said the printer is being sent it (a heartbeat came).
    printing_started: bool = False
    submitted_at: datetime | None = None
    deadline_at: datetime | None = None
    cups_job_id: int | None = None
    origin_host: str | None = None
    duplex: bool = False
    number_up: int = 1
    color_mode: str = "color"
    document: Document | None = None
    # SHA-256 (hex) of the analysed bytes: the printed bytes can be checked against it.
    document_sha256: str | None = None
    events: list[Message] = field(default_factory=list, repr=False)

    # ------------------------------------------------------------------ capture

    @classmethod
    def capture(
        cls,
        cmd: SubmitJob,
        *,
        now: datetime,
        deadline_seconds: int,
        identity: str,
        print_server: str | None,
        analysis: Analysis | None,
        refused: str | None = None,
    ) -> Job:
        """The job a submission makes: captured with its analysed document, or denied at
        capture when the document was refused or could not be analysed."""
        job = cls(
            job_id=cmd.job_id,
            user=cmd.user,
            printer=cmd.printer,
            document_name=cmd.document_name,
            state="captured",
            source=cmd.source,
            copies=cmd.copies,
            size_bytes=len(cmd.document),
            identity=identity,
            print_server=print_server,
            submitted_at=now,
            deadline_at=now + timedelta(seconds=deadline_seconds),
            cups_job_id=cmd.cups_job_id,
            origin_host=cmd.origin_host,
            duplex=cmd.duplex,
            number_up=cmd.number_up,
            color_mode=cmd.color_mode,
        )
        if refused or analysis is None:
            job.state = "denied"
            job.reason = refused or NOT_ANALYSED
            job.events.append(
                JobDenied(
                    **job._about(),
                    reason=job.reason,
                    denied_by=SERVICE,
                )
            )
            return job
        job.pages = analysis.pages
        job.document = Document.laid_out(
            analysis, duplex=job.duplex, number_up=job.number_up, color_mode=job.color_mode
        )
        job.document_sha256 = hashlib.sha256(cmd.document).hexdigest()
        job.events.append(
            JobCaptured(
                **job._about(),
                **dataclasses.asdict(job.document),
                **{name: getattr(job, name) for name in _ANNOUNCED_AT_CAPTURE},
                captured_at=now,
            )
        )
        return job

    def _about(self) -> dict:
        """The fields every event about the job starts with."""
        return {
            "job_id": self.job_id,
            "user": self.user,
            "printer": self.printer,
            "document_name": self.document_name,
        }

    @property
    def marks(self) -> dict[str, str]:
        """The log fields that follow this job through every service (see `marks_of`)."""
        return marks_of(self.identity)

    @property
    def spooled(self) -> bool:
        """Whether job-capture keeps the job's document: an API job's waits here until the
        job is printed or closed; a CUPS job's stays with the CUPS backend."""
        return self.source == "api" and self.state in WAITING

    # -------------------------------------------------------------- transitions

    def _move(self, target: str, *, reason: str | None = None, printer_has_none=False) -> None:
        if not can_move(self.state, target, printer_has_none=printer_has_none):
            raise IllegalTransition(self.state, target)
        self.state = target
        if reason is not None:
            self.reason = reason

    def price(self, cost: Decimal) -> None:
        """Priced. One queue's deliveries are handled concurrently, so the ledger's
        decision on the job (`job.authorized`, `job.denied`), sent after the price, may
        be applied first: a job already past pricing keeps its state and still gains its
        price, which its log shows. A job priced already refuses a second price."""
        if self.cost is None and self.state not in ("captured", "priced"):
            self.cost = cost
            return
        self._move("priced")
        self.cost = cost

    def release(self, now: datetime) -> None:
        """Authorised: to the printer. A job submitted by a program has no physical
        printer: releasing it is printing it. A CUPS job's backend sees "released",
        prints, and reports the outcome."""
        self._move("released")
        if self.source != "cups":
            self.mark_printed(now)

    def deny(self, reason: str) -> None:
        """A policy or the ledger refused it (and published so)."""
        self._move("denied", reason=reason)

    def cancel(self, reason: str, *, by: CancelledBy) -> None:
        """The one way a job is cancelled, uncharged. A job waiting for a decision may be
        cancelled by anyone; a released one only by its CUPS backend, and only before the
        printer was sent any of it (else cancelling would let a printed job go free: the
        backend reports such a job as interrupted instead)."""
        self._move(
            "cancelled",
            reason=reason,
            printer_has_none=by == "cups" and not self.printing_started,
        )
        if by != "event":  # a job.cancelled on the bus is already known to all
            self.events.append(
                JobCancelled(
                    **self._about(),
                    reason=reason,
                )
            )

    def mark_printed(self, now: datetime, *, interrupted: bool = False) -> None:
        """Printed (charged): also when cancelled in CUPS while the printer was being
        sent it, since the printer may hold part of it."""
        self._move("printed", reason=INTERRUPTED if interrupted else None)
        self.events.append(
            JobPrinted(
                **self._about(),
                pages=self.pages,
                copies=self.copies,
                printed_at=now,
            )
        )

    def fail(self, reason: str | None) -> None:
        """The printer's backend failed before the release timeout: never charged."""
        self._move("failed", reason=reason or NOT_PRINTED)
        self.events.append(
            JobFailed(
                **self._about(),
                reason=self.reason,
            )
        )

    def report_outcome(
        self, printed: bool, *, now: datetime, interrupted: bool = False, reason: str | None = None
    ) -> Outcome:
        """Apply the print server's report of what the printer did (see `after_outcome`)."""
        target = after_outcome(self.state, printed)
        if target == "printed":
            self.mark_printed(now, interrupted=interrupted)
            return "printed"
        if target == "failed":
            self.fail(reason)
            return "failed"
        if self.state == "unconfirmed":
            # Already charged: recorded for the administrator who reviews unconfirmed
            # jobs, the charge unchanged.
            self.reason = LATE_FAILURE.format(reason or "no reason given")
            return "late failure"
        return "ignored"

    def keep_alive(self) -> bool:
        """The printer is still being sent the job: its release timeout starts again. Only
        a released job is being printed; False for any other."""
        if self.state != "released":
            return False
        self.printing_started = True
        return True

    def expire(self) -> None:
        """Its deadline passed with nobody deciding: cancelled, with a reason the user sees."""
        self.cancel(EXPIRED, by="deadline")

    def mark_unconfirmed(self) -> None:
        """Released to a CUPS printer, and by the release timeout neither an outcome nor a
        heartbeat came: the printer may have printed it, so it is charged."""
        if self.source != "cups":
            raise IllegalTransition(self.state, "unconfirmed")
        self._move("unconfirmed", reason=UNREPORTED)
        self.events.append(
            JobUnconfirmed(
                **self._about(),
                reason=UNREPORTED,
            )
        )
