"""The job aggregate: events about one print job, and the commands that create and list jobs.

Every job event carries `job_id`, which is also the AMQP correlation id.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import ClassVar, Literal

from pydantic import Base64Bytes, Field

from platen.events.base import Login, Message, Name, PrinterName
from platen.events.money import Money
from platen.events.registry import register


@register
class SubmitJob(Message):
    """Command to job-capture: capture this document as a job (`capture.submit`).

    `job_id` is chosen by the submitter, so resubmitting the same command is harmless.
    """

    message_type: ClassVar[str] = "capture.submit"
    job_id: uuid.UUID
    user: Login
    printer: PrinterName
    document_name: Name
    document: Base64Bytes
    copies: int = Field(default=1, ge=1, le=999)


@register
class JobSubmitted(Message):
    """Reply to `capture.submit`: the job was accepted (it may still be denied later)."""

    message_type: ClassVar[str] = "capture.submit.reply"
    job_id: uuid.UUID


@register
class JobCaptured(Message):
    message_type: ClassVar[str] = "job.captured"
    job_id: uuid.UUID
    user: Login
    printer: PrinterName
    document_name: Name
    pages: int = Field(ge=1)
    copies: int = Field(ge=1)
    size_bytes: int = Field(ge=0)
    captured_at: datetime


@register
class JobPriced(Message):
    message_type: ClassVar[str] = "job.priced"
    job_id: uuid.UUID
    user: Login
    printer: PrinterName
    document_name: Name
    pages: int = Field(ge=1)
    copies: int = Field(ge=1)
    cost: Money = Field(ge=0)


@register
class JobAuthorized(Message):
    message_type: ClassVar[str] = "job.authorized"
    job_id: uuid.UUID
    user: Login
    account: str
    amount: Money = Field(ge=0)


@register
class JobDenied(Message):
    """A job will not print. `reason` is written for the user who sent it."""

    message_type: ClassVar[str] = "job.denied"
    job_id: uuid.UUID
    user: Login
    printer: str
    document_name: str
    reason: str
    denied_by: str


@register
class JobPrinted(Message):
    message_type: ClassVar[str] = "job.printed"
    job_id: uuid.UUID
    user: Login
    printer: PrinterName
    document_name: Name
    pages: int = Field(ge=1)
    copies: int = Field(ge=1)
    printed_at: datetime


@register
class JobFailed(Message):
    """The printer did not print the job. A failed job is never charged."""

    message_type: ClassVar[str] = "job.failed"
    job_id: uuid.UUID
    user: Login
    printer: str
    document_name: str
    reason: str


JobState = Literal["captured", "priced", "released", "printed", "denied", "failed", "cancelled"]


@register
class ListJobs(Message):
    """Query to job-capture (`capture.jobs.list`)."""

    message_type: ClassVar[str] = "capture.jobs.list"
    user: Login | None = None
    limit: int = Field(default=100, ge=1, le=10_000)


class JobSummary(Message):
    message_type: ClassVar[str] = "capture.job"
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


@register
class JobList(Message):
    message_type: ClassVar[str] = "capture.jobs.list.reply"
    jobs: list[JobSummary]


@register
class JobCancelled(Message):
    """A job was cancelled before printing (by the user, an admin or its deadline)."""

    message_type: ClassVar[str] = "job.cancelled"
    job_id: uuid.UUID
    user: Login
    printer: str
    document_name: str
    reason: str
