"""The job aggregate: events about one print job, and the commands that create and list jobs.

Every job event carries `job_id`, which is also the AMQP correlation id.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, ClassVar, Literal

from pydantic import (
    Base64Bytes,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from platen.events.base import (
    Command,
    Event,
    JobEvent,
    Login,
    Name,
    Part,
    PrinterName,
    Query,
    Reply,
    sides_for_pages,
    upcasts,
)
from platen.events.money import Money
from platen.events.print_identity import JobIdentity
from platen.events.registry import register

NumberUp = Literal[1, 2, 4, 6, 9, 16]


@register
class SubmitJob(Command):
    """Command to job-capture: capture this document as a job (`capture.submit`).

    `job_id` is chosen by the submitter, so resubmitting the same command is harmless.
    Version 2 added what a print server knows about the job (`source` onwards).
    """

    message_type: ClassVar[str] = "capture.submit"
    schema_version: ClassVar[int] = 2
    job_id: uuid.UUID
    user: Login
    printer: PrinterName
    document_name: Name
    document: Base64Bytes
    copies: int = Field(default=1, ge=1, le=999)
    # "api": submitted by a program, printed on release by job-capture itself;
    # "cups": held by the Platen CUPS backend, which prints on release and reports back.
    source: Literal["api", "cups"] = "api"
    duplex: bool = False
    number_up: NumberUp = 1
    color_mode: Literal["color", "monochrome"] = "color"
    media: str | None = None
    origin_host: str | None = None
    cups_job_id: int | None = None
    deadline_seconds: int | None = Field(default=None, ge=1, le=7 * 24 * 3600)

    @upcasts(1)
    def _v1_to_v2(body: dict) -> dict:
        return {**body, "source": "api"}


@register
class JobSubmitted(Reply):
    """Reply to `capture.submit`: the job was accepted (it may still be denied later)."""

    message_type: ClassVar[str] = "capture.submit.reply"
    job_id: uuid.UUID


# What job-capture analyses: PDF, PostScript, and the rasters CUPS sends IPP Everywhere
# printers that take no PDF (PWG raster and Apple raster, "URF").
DocumentFormat = Literal["pdf", "postscript", "pwg-raster", "urf"]


class SideGroup(BaseModel):
    """Printed sides of one copy that share a paper size and colour."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    paper: str
    color: bool
    count: int = Field(ge=1)


@register
class JobCaptured(JobEvent):
    """A job was captured and its document analysed.

    Version 2 carries the analysis. Version 3 adds the raster formats an IPP Everywhere
    printer is sent (`pwg-raster`, `urf`) to `format`; a version 2 event is a valid
    version 3 one as it is. `pages` and `color_pages` describe the document
    (logical pages, numbered from 1); `sides` and `sheets` what the printer will produce
    after N-up and duplex, for one copy; `side_groups` the sides of one copy by paper
    size and colour, which is what pricing needs. Totals multiply by `copies`.
    Version 4 says how the user was identified (`identity`, see
    `platen.events.print_identity`) and from which host the job came (`origin_host`): an
    `unverified` job must be confirmed by its user before it prints.
    """

    message_type: ClassVar[str] = "job.captured"
    schema_version: ClassVar[int] = 4
    pages: int = Field(ge=1)
    copies: int = Field(ge=1)
    size_bytes: int = Field(ge=0)
    captured_at: datetime
    format: DocumentFormat = "pdf"
    color_pages: list[int] = Field(default_factory=list)
    paper_sizes: dict[str, int] = Field(default_factory=dict)
    duplex: bool = False
    number_up: NumberUp = 1
    color_mode: Literal["color", "monochrome"] = "color"
    sides: int = Field(default=0, ge=0)
    sheets: int = Field(default=0, ge=0)
    side_groups: list[SideGroup] = Field(default_factory=list)
    analysis_ms: int = Field(default=0, ge=0)
    # Unproven unless said otherwise: a job nobody vouched for is asked about.
    identity: JobIdentity = "unverified"
    origin_host: str | None = Field(default=None, max_length=255)

    @property
    def total_sides(self) -> int:
        return self.sides * self.copies

    @property
    def total_sheets(self) -> int:
        return self.sheets * self.copies

    @upcasts(1)
    def _v1_to_v2(body: dict) -> dict:
        # Version 1 knew only the page count: every page one grayscale side of unknown paper.
        pages = body["pages"]
        return {
            **body,
            "format": "pdf",
            "color_pages": [],
            "paper_sizes": {"unknown": pages},
            "duplex": False,
            "number_up": 1,
            "color_mode": "color",
            "sides": pages,
            "sheets": pages,
            "side_groups": [{"paper": "unknown", "color": False, "count": pages}],
            "analysis_ms": 0,
        }

    @upcasts(2)
    def _v2_to_v3(body: dict) -> dict:
        # Version 3 only allows more formats: every version 2 body is already valid.
        return body

    @upcasts(3)
    def _v3_to_v4(body: dict) -> dict:
        # Before version 4 nothing checked who sent a job: an old event proves nobody, so its
        # user is asked before it prints (the safe reading; a `trusted` queue would have
        # said nothing more).
        return {**body, "identity": "unverified", "origin_host": None}


@register
class AnalyseDocument(Query):
    """Query to job-capture (`capture.analyse`): analyse a document as it would be printed,
    without making a job. For quotes: the reply's side groups go to `pricing.quote`."""

    message_type: ClassVar[str] = "capture.analyse"
    document: Base64Bytes
    duplex: bool = False
    number_up: NumberUp = 1
    color_mode: Literal["color", "monochrome"] = "color"


@register
class DocumentAnalysis(Reply):
    """Reply to `capture.analyse`: the same analysis a captured job carries."""

    message_type: ClassVar[str] = "capture.analyse.reply"
    format: DocumentFormat
    pages: int = Field(ge=1)
    color_pages: list[int]
    paper_sizes: dict[str, int]
    sides: int = Field(ge=0)
    sheets: int = Field(ge=0)
    side_groups: list[SideGroup]
    analysis_ms: int = Field(ge=0)


class PriceLine(BaseModel):
    """One line of a price's breakdown: what was counted, at what rate, and why."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    description: str
    quantity: int = Field(ge=0)
    unit_price: Money
    amount: Money


@register
class JobPriced(JobEvent):
    """A job has its price, and whatever the printer's policies say about it.

    Version 2 explains the price: the schedule version it came from and an itemised
    breakdown whose amounts add up to `cost`. Version 3 names what it counts for what it
    is: `sides`, the printed sides of one copy (version 2 called them `pages`), of which
    `color_sides` + `grayscale_sides` = `sides`. A policy may ask that the user
    confirm the job before it prints (`confirm`) and add `messages` to show them (for
    example "print double-sided to save 20 %").
    """

    message_type: ClassVar[str] = "job.priced"
    schema_version: ClassVar[int] = 3
    sides: int = Field(ge=1)
    copies: int = Field(ge=1)
    cost: Money = Field(ge=0)
    color_sides: int = Field(default=0, ge=0)
    grayscale_sides: int = Field(default=0, ge=0)
    duplex: bool = False
    schedule_version: int = Field(default=0, ge=0)
    breakdown: list[PriceLine] = Field(default_factory=list)
    confirm: bool = False
    messages: list[str] = Field(default_factory=list)

    @upcasts(1)
    def _v1_to_v2(body: dict) -> dict:
        # Version 1 had one flat price per page and no record of how it was reached:
        # every page counts as grayscale, the breakdown is unknown, no policy spoke.
        return {
            **body,
            "color_pages": 0,
            "grayscale_pages": body["pages"],
            "duplex": False,
            "schedule_version": 0,
            "breakdown": [],
            "confirm": False,
            "messages": [],
        }

    @upcasts(2)
    def _v2_to_v3(body: dict) -> dict:
        return sides_for_pages(body)


@register
class JobAuthorized(Event):
    """Version 2 adds the comment the user gave when they confirmed or chose the account
    (None when they were not asked, or gave none); every version 1 body is valid."""

    message_type: ClassVar[str] = "job.authorized"
    schema_version: ClassVar[int] = 2
    job_id: uuid.UUID
    user: Login
    account: str
    amount: Money = Field(ge=0)
    comment: Annotated[str, StringConstraints(max_length=500)] | None = None

    @upcasts(1)
    def _v1_to_v2(body: dict) -> dict:
        return body


@register
class JobDenied(JobEvent):
    """A job will not print. `reason` is written for the user who sent it."""

    message_type: ClassVar[str] = "job.denied"
    reason: str
    denied_by: str


@register
class JobPrinted(JobEvent):
    message_type: ClassVar[str] = "job.printed"
    pages: int = Field(ge=1)
    copies: int = Field(ge=1)
    printed_at: datetime


@register
class JobFailed(JobEvent):
    """The printer did not print the job. A failed job is never charged."""

    message_type: ClassVar[str] = "job.failed"
    reason: str


@register
class JobUnconfirmed(JobEvent):
    """A released job's fate is unknown: past the release timeout, the print server neither
    reported an outcome nor said the printer was still being sent it. The printer may have
    printed it, so it is charged like a printed job; an administrator lists these jobs
    (`platenctl jobs --state unconfirmed`) and may refund one. A later outcome still
    counts: "printed" closes the job without charging it again."""

    message_type: ClassVar[str] = "job.unconfirmed"
    reason: str


# "unconfirmed": released, and the print server never said what the printer did (charged).
JobState = Literal[
    "captured", "priced", "released", "printed", "denied", "failed", "cancelled", "unconfirmed"
]


@register
class ListJobs(Query):
    """Query to job-capture (`capture.jobs.list`)."""

    message_type: ClassVar[str] = "capture.jobs.list"
    schema_version: ClassVar[int] = 3
    user: Login | None = None
    limit: int = Field(default=100, ge=1, le=10_000)
    # Version 2: only the jobs in this state (e.g. the unconfirmed ones an admin reviews).
    state: JobState | None = None
    # Version 3: by printer, by the account charged, and submitted in [since, until).
    printer: PrinterName | None = None
    account: Annotated[str, StringConstraints(max_length=300)] | None = None
    since: datetime | None = None
    until: datetime | None = None

    @upcasts(1)
    def _v1_to_v2(body: dict) -> dict:
        return {**body, "state": None}

    @upcasts(2)
    def _v2_to_v3(body: dict) -> dict:
        return body  # version 3 only adds filters, each None by default


class JobSummary(Part):
    """One job in a `JobList`. Version 3 of the list adds what the job log shows: the
    printed sides (colour and grayscale, of one copy), duplex, paper sizes, the account
    charged and the amount held or charged on it, the user's comment, the print server and
    host it came from, and when it last changed."""

    job_id: uuid.UUID
    user: str
    printer: str
    document_name: str
    pages: int | None
    copies: int
    cost: Money | None
    state: JobState
    reason: str | None
    submitted_at: datetime
    sides: int | None = None
    color_sides: int | None = None
    grayscale_sides: int | None = None
    duplex: bool = False
    paper_sizes: dict[str, int] = Field(default_factory=dict)
    account: str | None = None
    amount: Money | None = None
    comment: str | None = None
    source: str | None = None  # "cups" or "api"
    print_server: str | None = None
    origin_host: str | None = None
    updated_at: datetime | None = None


@register
class JobList(Reply):
    """Version 2: a job's state may be "unconfirmed"; every version 1 body is valid."""

    message_type: ClassVar[str] = "capture.jobs.list.reply"
    schema_version: ClassVar[int] = 3
    jobs: list[JobSummary]
    truncated: bool = False  # more jobs matched than the limit

    @upcasts(1)
    def _v1_to_v2(body: dict) -> dict:
        return body

    @upcasts(2)
    def _v2_to_v3(body: dict) -> dict:
        return body  # version 3 only adds fields, each with a default


@register
class JobCancelled(JobEvent):
    """A job was cancelled before printing (by the user, an admin or its deadline)."""

    message_type: ClassVar[str] = "job.cancelled"
    reason: str


@register
class GetJobStatus(Query):
    """Query to job-capture (`capture.job.status`): where is this job?

    The CUPS backend asks this while it holds a job, so it survives restarts of anything:
    a question asked again gets the current answer.
    """

    message_type: ClassVar[str] = "capture.job.status"
    job_id: uuid.UUID


@register
class JobStatus(Reply):
    """Where a job is. "unknown" means there is no such job (the backend then submits it).

    Version 2: a job may be "unconfirmed"; every version 1 body is valid."""

    message_type: ClassVar[str] = "capture.job.status.reply"
    schema_version: ClassVar[int] = 2
    job_id: uuid.UUID
    state: JobState | Literal["unknown"]
    reason: str | None = None

    @upcasts(1)
    def _v1_to_v2(body: dict) -> dict:
        return body


@register
class ReportOutcome(Command):
    """Command to job-capture (`capture.job.outcome`): what the printer did with a released
    job. Sent by the CUPS backend after the real backend has run.

    Version 2 adds `interrupted`: the job was cancelled in CUPS while the printer was being
    sent it. The printer may hold part of it, so it counts as printed (`printed` is true).
    """

    message_type: ClassVar[str] = "capture.job.outcome"
    schema_version: ClassVar[int] = 2
    job_id: uuid.UUID
    printed: bool
    reason: str | None = None
    interrupted: bool = False

    @model_validator(mode="after")
    def _interrupted_is_printed(self) -> ReportOutcome:
        if self.interrupted and not self.printed:
            raise ValueError("an interrupted job counts as printed")
        return self

    @upcasts(1)
    def _v1_to_v2(body: dict) -> dict:
        return {**body, "interrupted": False}


@register
class CancelJob(Command):
    """Command to job-capture (`capture.job.cancel`) from the CUPS backend: the job was
    cancelled in CUPS before the printer was sent any of it. A job still waiting for a
    decision, or released but not yet started, is cancelled and never charged; a job
    whose printing started is not (its backend reports it as interrupted instead)."""

    message_type: ClassVar[str] = "capture.job.cancel"
    job_id: uuid.UUID
    reason: str = Field(default="cancelled in CUPS", max_length=500)


@register
class AdminCancelJob(Command):
    """Command to job-capture (`capture.job.admin_cancel`) from an administrator
    (`platenctl job cancel`): cancel a job still waiting for a decision, e.g. held for its
    user's confirmation. It is never charged: `job.cancelled` follows, so the ledger voids
    its hold and the user's desktop is told `reason`. A job already released to its
    printer, or closed, is refused with the reason; the reply is the job's `JobStatus`."""

    message_type: ClassVar[str] = "capture.job.admin_cancel"
    job_id: uuid.UUID
    reason: str | None = Field(default=None, min_length=1, max_length=400)


@register
class KeepJobAlive(Command):
    """Command to job-capture (`capture.job.heartbeat`) from the CUPS backend, every few
    seconds while the printer is being sent a released job: the job is still printing, so
    a long print is not taken for a lost one. Replied to with the job's `JobStatus`."""

    message_type: ClassVar[str] = "capture.job.heartbeat"
    job_id: uuid.UUID
