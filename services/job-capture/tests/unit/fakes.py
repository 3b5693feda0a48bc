"""An in-memory stand-in for `platen.job_capture.store.Store`: the same methods, no
database. A job handed out is a copy, so a handler that changes a job and forgets to save
it leaves the fake unchanged, as it would leave the table."""

from __future__ import annotations

import dataclasses
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from platen.job_capture.domain import FINAL, WAITING, Job


def _copy(job: Job) -> Job:
    return dataclasses.replace(job, events=[])


class FakeStore:
    def __init__(self, *jobs: Job) -> None:
        self.jobs: dict[uuid.UUID, Job] = {}
        self.updated_at: dict[uuid.UUID, datetime] = {}
        self.alive_at: dict[uuid.UUID, datetime] = {}
        self.spooled: dict[uuid.UUID, bytes] = {}
        self.cancelled_early: dict[uuid.UUID, str] = {}
        self.modes: dict[str, str] = {}
        self.locked: list[uuid.UUID] = []
        self.log: dict[uuid.UUID, dict] = {}  # the job log's columns, by job
        for job in jobs:
            self.put(job)

    def put(self, job: Job, *, updated: timedelta = timedelta(0)) -> Job:
        """Test set-up: a job as far as its state, last changed `updated` ago."""
        self.jobs[job.job_id] = _copy(job)
        self.updated_at[job.job_id] = datetime.now(UTC) - updated
        if job.printing_started:
            self.alive_at[job.job_id] = datetime.now(UTC)
        return job

    # ------------------------------------------------------------------- jobs

    async def prune(self, older_than: datetime) -> dict[str, int]:
        ended = [
            j
            for j, job in self.jobs.items()
            if job.state in FINAL and self.updated_at[j] < older_than
        ]
        spooled = [j for j in ended if self.spooled.pop(j, None) is not None]
        for job_id in ended:
            del self.jobs[job_id]
        early = len(self.cancelled_early)  # no times kept: all count as old
        self.cancelled_early.clear()
        return {"jobs": len(ended), "spool": len(spooled), "cancelled_before_capture": early}

    async def lock_job_id(self, job_id: uuid.UUID) -> None:
        self.locked.append(job_id)

    async def exists(self, job_id: uuid.UUID) -> bool:
        return job_id in self.jobs

    async def get(self, job_id: uuid.UUID) -> Job | None:
        job = self.jobs.get(job_id)
        return None if job is None else _copy(job)

    async def add(self, job: Job) -> None:
        assert job.job_id not in self.jobs, "a job is added once"
        self.put(job)

    async def move(self, *jobs: Job) -> None:
        for job in jobs:
            saved = self.jobs[job.job_id]
            saved.state, saved.reason, saved.cost = job.state, job.reason, job.cost
            self.updated_at[job.job_id] = datetime.now(UTC)
            if job.source == "api" and not job.spooled:
                self.spooled.pop(job.job_id, None)

    async def note_reason(self, job: Job) -> None:
        self.jobs[job.job_id].reason = job.reason
        self.updated_at[job.job_id] = datetime.now(UTC)

    async def keep_alive(self, job: Job) -> None:
        self.jobs[job.job_id].printing_started = True
        self.alive_at[job.job_id] = datetime.now(UTC)

    async def spool(self, job_id: uuid.UUID, document: bytes) -> None:
        assert job_id not in self.spooled
        self.spooled[job_id] = document

    async def status(self, job_id: uuid.UUID) -> tuple[str, str | None] | None:
        job = self.jobs.get(job_id)
        return None if job is None else (job.state, job.reason)

    async def open_jobs_by_state(self) -> dict[str, int]:
        return dict(Counter(j.state for j in self.jobs.values() if j.state not in FINAL))

    async def owner(self, job_id: uuid.UUID) -> tuple[bool, str | None]:
        job = self.jobs.get(job_id)
        return (False, None) if job is None else (True, job.print_server)

    async def recent(
        self,
        *,
        user: str | None,
        state: str | None,
        limit: int,
        printer: str | None = None,
        account: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list:
        def wanted(j) -> bool:
            log = self.log.get(j.job_id, {})
            return (
                (user is None or j.user == user)
                and (state is None or j.state == state)
                and (printer is None or j.printer == printer)
                and (account is None or log.get("charged_account") == account)
                and (since is None or (j.submitted_at is not None and j.submitted_at >= since))
                and (until is None or (j.submitted_at is not None and j.submitted_at < until))
            )

        jobs = [j for j in self.jobs.values() if wanted(j)]
        jobs.sort(key=lambda j: j.submitted_at or datetime.min.replace(tzinfo=UTC), reverse=True)
        empty = {"color_sides": None, "grayscale_sides": None, "charged_account": None}
        return [
            {
                "job_id": j.job_id,
                "user_login": j.user,
                "printer": j.printer,
                "document_name": j.document_name,
                "pages": j.pages,
                "copies": j.copies,
                "cost": j.cost,
                "state": j.state,
                "reason": j.reason,
                "submitted_at": j.submitted_at,
                "sides": j.document.sides if j.document else None,
                "duplex": j.duplex,
                "paper_sizes": j.document.paper_sizes if j.document else None,
                "source": j.source,
                "print_server": j.print_server,
                "origin_host": j.origin_host,
                "updated_at": j.submitted_at,
                "charged_amount": None,
                "comment": None,
                **empty,
                **self.log.get(j.job_id, {}),
            }
            for j in jobs[:limit]
        ]

    async def note_price(self, job_id: uuid.UUID, color_sides: int, grayscale_sides: int) -> None:
        self.log.setdefault(job_id, {}).update(
            color_sides=color_sides, grayscale_sides=grayscale_sides
        )

    async def note_charge(
        self, job_id: uuid.UUID, account: str, amount: Decimal, comment: str | None
    ) -> None:
        self.log.setdefault(job_id, {}).update(
            charged_account=account, charged_amount=amount, comment=comment
        )

    # -------------------------------------------------- cancels before capture

    async def cancelled_before_capture(self, job_id: uuid.UUID) -> bool:
        return job_id in self.cancelled_early

    async def cancel_before_capture(self, job_id: uuid.UUID, reason: str) -> None:
        self.cancelled_early.setdefault(job_id, reason)

    # ----------------------------------------------------------------- expiry

    async def overdue(self, limit: int = 500) -> list[Job]:
        now = datetime.now(UTC)
        found = [
            j
            for j in self.jobs.values()
            if j.state in WAITING and j.deadline_at is not None and j.deadline_at < now
        ]
        return [_copy(j) for j in sorted(found, key=lambda j: j.deadline_at)[:limit]]

    async def unreported(self, timeout: float, limit: int = 500) -> list[Job]:
        since = datetime.now(UTC) - timedelta(seconds=timeout)
        found = [
            j
            for j in self.jobs.values()
            if j.state == "released"
            and j.source == "cups"
            and max(
                self.updated_at[j.job_id], self.alive_at.get(j.job_id, self.updated_at[j.job_id])
            )
            < since
        ]
        return [_copy(j) for j in found[:limit]]

    # --------------------------------------------------- queues' identity modes

    async def identity_mode(self, printer: str) -> str | None:
        return self.modes.get(printer)

    async def set_identity_mode(self, printer: str, mode: str) -> None:
        self.modes[printer] = mode

    async def identity_modes(self, mode: str | None) -> list[tuple[str, str]]:
        return sorted((p, m) for p, m in self.modes.items() if mode is None or m == mode)
