"""job-capture's store: every SQL statement of the service, over one open transaction.

It takes and returns `domain.Job`s (plain rows for listings). `move` is the one statement
that writes `jobs.state`, and callers use it only after the job's own transition allowed
the move. Handlers and the expiry task reach it as `ctx.store` (main.py wires it).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

import asyncpg

from platen.events.print_identity import IdentityMode
from platen.job_capture.domain import FINAL, Job

# Job rows locked for a change; SKIP LOCKED lets several job-capture processes share the
# expiry work.
_OVERDUE = """SELECT * FROM jobs
              WHERE state IN ('captured', 'priced') AND deadline_at < now()
              ORDER BY deadline_at LIMIT $1 FOR UPDATE SKIP LOCKED"""
_UNREPORTED = """SELECT * FROM jobs
                 WHERE state = 'released' AND source = 'cups'
                   AND greatest(updated_at, alive_at) < now() - make_interval(secs => $1)
                 LIMIT $2 FOR UPDATE SKIP LOCKED"""


# The fields of a Job stored in a column of the same name.
_SAME_NAME = (
    "job_id",
    "printer",
    "document_name",
    "state",
    "source",
    "copies",
    "size_bytes",
    "pages",
    "cost",
    "reason",
    "identity",
    "print_server",
    "submitted_at",
    "deadline_at",
    "cups_job_id",
    "origin_host",
    "duplex",
    "number_up",
    "color_mode",
    "document_sha256",
)


def _job(row: asyncpg.Record) -> Job:
    # The analysed document is written once, at capture, and never read back: no
    # transition needs it.
    return Job(
        user=row["user_login"],
        printing_started=row["alive_at"] is not None,
        **{name: row[name] for name in _SAME_NAME},
    )


class Store:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    # ------------------------------------------------------------------- jobs

    async def lock_job_id(self, job_id: uuid.UUID) -> None:
        """Serialise a job's submission and its cancellation, even before the job's row
        exists: a cancel handled while the submission is analysed waits for it."""
        await self.conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 11))", str(job_id)
        )

    async def exists(self, job_id: uuid.UUID) -> bool:
        return bool(await self.conn.fetchval("SELECT 1 FROM jobs WHERE job_id = $1", job_id))

    async def get(self, job_id: uuid.UUID) -> Job | None:
        """The job, locked until the transaction ends; None when unknown."""
        row = await self.conn.fetchrow("SELECT * FROM jobs WHERE job_id = $1 FOR UPDATE", job_id)
        return None if row is None else _job(row)

    async def add(self, job: Job) -> None:
        """Record a job just captured (or denied at capture), with its analysis."""
        doc = job.document
        await self.conn.execute(
            """INSERT INTO jobs (job_id, user_login, printer, document_name, size_bytes, copies,
                                 state, reason, submitted_at, source, cups_job_id, origin_host,
                                 deadline_at, duplex, number_up, color_mode, print_server,
                                 identity, pages, format, color_pages, paper_sizes, sides,
                                 sheets, side_groups, analysis_ms, document_sha256)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
                       $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27)""",
            job.job_id,
            job.user,
            job.printer,
            job.document_name,
            job.size_bytes,
            job.copies,
            job.state,
            job.reason,
            job.submitted_at,
            job.source,
            job.cups_job_id,
            job.origin_host,
            job.deadline_at,
            job.duplex,
            job.number_up,
            job.color_mode,
            job.print_server,
            job.identity,
            job.pages,
            doc and doc.format,
            doc and doc.color_pages,
            doc and doc.paper_sizes,
            doc and doc.sides,
            doc and doc.sheets,
            doc and doc.side_groups,
            doc and doc.analysis_ms,
            job.document_sha256,
        )

    async def move(self, *jobs: Job) -> None:
        """Write the state each job's transition moved it to (with its reason and cost),
        in one statement, and drop the documents job-capture no longer keeps for them."""
        await self.conn.execute(
            """UPDATE jobs SET state = m.state, reason = m.reason, cost = m.cost,
                               updated_at = now()
               FROM unnest($1::uuid[], $2::text[], $3::text[], $4::numeric[])
                    AS m(job_id, state, reason, cost)
               WHERE jobs.job_id = m.job_id""",
            [j.job_id for j in jobs],
            [j.state for j in jobs],
            [j.reason for j in jobs],
            [j.cost for j in jobs],
        )
        # Only an API job ever has a spooled document.
        done = [j.job_id for j in jobs if j.source == "api" and not j.spooled]
        if done:
            await self.conn.execute("DELETE FROM spool WHERE job_id = ANY($1::uuid[])", done)

    async def note_reason(self, job: Job) -> None:
        """Record a new reason on a job whose state did not change."""
        await self.conn.execute(
            "UPDATE jobs SET reason = $2, updated_at = now() WHERE job_id = $1",
            job.job_id,
            job.reason,
        )

    async def keep_alive(self, job: Job) -> None:
        """The job's backend says the printer is still being sent it (now)."""
        await self.conn.execute("UPDATE jobs SET alive_at = now() WHERE job_id = $1", job.job_id)

    async def spool(self, job_id: uuid.UUID, document: bytes) -> None:
        await self.conn.execute(
            "INSERT INTO spool (job_id, document) VALUES ($1, $2)", job_id, document
        )

    async def status(self, job_id: uuid.UUID) -> tuple[str, str | None] | None:
        """The job's state and reason; None when unknown."""
        row = await self.conn.fetchrow("SELECT state, reason FROM jobs WHERE job_id = $1", job_id)
        return None if row is None else (row["state"], row["reason"])

    async def open_jobs_by_state(self) -> dict[str, int]:
        """How many jobs are in each state that is not final (for the metrics)."""
        rows = await self.conn.fetch(
            "SELECT state, count(*) AS n FROM jobs WHERE state <> ALL($1::text[]) GROUP BY state",
            sorted(FINAL),
        )
        return {r["state"]: r["n"] for r in rows}

    async def owner(self, job_id: uuid.UUID) -> tuple[bool, str | None]:
        """Whether the job exists, and the print server that submitted it."""
        row = await self.conn.fetchrow("SELECT print_server FROM jobs WHERE job_id = $1", job_id)
        return (False, None) if row is None else (True, row["print_server"])

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
        """The newest jobs first, as rows (a read model), submitted in [since, until)."""
        return await self.conn.fetch(
            """SELECT * FROM jobs WHERE ($1::text IS NULL OR user_login = $1)
                 AND ($3::text IS NULL OR state = $3)
                 AND ($4::text IS NULL OR printer = $4)
                 AND ($5::text IS NULL OR charged_account = $5)
                 AND ($6::timestamptz IS NULL OR submitted_at >= $6)
                 AND ($7::timestamptz IS NULL OR submitted_at < $7)
               ORDER BY submitted_at DESC LIMIT $2""",
            user,
            limit,
            state,
            printer,
            account,
            since,
            until,
        )

    async def note_price(self, job_id: uuid.UUID, color_sides: int, grayscale_sides: int) -> None:
        """For the job log: the sides the job was priced for."""
        await self.conn.execute(
            "UPDATE jobs SET color_sides = $2, grayscale_sides = $3 WHERE job_id = $1",
            job_id,
            color_sides,
            grayscale_sides,
        )

    async def note_charge(
        self, job_id: uuid.UUID, account: str, amount: Decimal, comment: str | None
    ) -> None:
        """For the job log: the account the ledger holds (then charges) the job on."""
        await self.conn.execute(
            "UPDATE jobs SET charged_account = $2, charged_amount = $3, comment = $4 "
            "WHERE job_id = $1",
            job_id,
            account,
            amount,
            comment,
        )

    # -------------------------------------------------- cancels before capture

    async def cancelled_before_capture(self, job_id: uuid.UUID) -> bool:
        """Whether CUPS cancelled this job before its submission was handled (the caller
        holds `lock_job_id`)."""
        return bool(
            await self.conn.fetchval(
                "SELECT 1 FROM cancelled_before_capture WHERE job_id = $1", job_id
            )
        )

    async def cancel_before_capture(self, job_id: uuid.UUID, reason: str) -> None:
        await self.conn.execute(
            "INSERT INTO cancelled_before_capture (job_id, reason) VALUES ($1, $2) "
            "ON CONFLICT DO NOTHING",
            job_id,
            reason,
        )

    # ----------------------------------------------------------------- expiry

    async def overdue(self, limit: int = 500) -> list[Job]:
        """Jobs still waiting for a decision past their deadline, locked."""
        return [_job(r) for r in await self.conn.fetch(_OVERDUE, limit)]

    async def unreported(self, timeout: float, limit: int = 500) -> list[Job]:
        """Released CUPS jobs with neither an outcome nor a heartbeat for `timeout`
        seconds, locked."""
        return [_job(r) for r in await self.conn.fetch(_UNREPORTED, timeout, limit)]

    # --------------------------------------------------- queues' identity modes

    async def identity_mode(self, printer: str) -> IdentityMode | None:
        """The mode an administrator set for the queue; None when none was set."""
        return await self.conn.fetchval(
            "SELECT mode FROM printer_identity WHERE printer = $1", printer
        )

    async def set_identity_mode(self, printer: str, mode: IdentityMode) -> None:
        await self.conn.execute(
            """INSERT INTO printer_identity (printer, mode) VALUES ($1, $2)
               ON CONFLICT (printer) DO UPDATE SET mode = $2, changed_at = now()""",
            printer,
            mode,
        )

    async def identity_modes(self, mode: IdentityMode | None) -> Sequence[tuple[str, str]]:
        """The queues an administrator set a mode for (only `mode`'s, if given)."""
        rows = await self.conn.fetch(
            """SELECT printer, mode FROM printer_identity
               WHERE ($1::text IS NULL OR mode = $1) ORDER BY printer""",
            mode,
        )
        return [(r["printer"], r["mode"]) for r in rows]

    # ------------------------------------------------------------------- retention

    async def prune(self, older_than: datetime) -> dict[str, int]:
        """Delete what nothing waits on any more from before `older_than` (see
        platen.operations.retention): jobs that ended (printed, denied, failed, cancelled)
        with any spooled document they still had, and the notes of jobs cancelled before
        they were captured. A job that has not ended (waiting, released, unconfirmed) is
        kept however old."""
        ended = await self.conn.fetch(
            "SELECT job_id FROM jobs WHERE state = ANY($1::text[]) AND updated_at < $2",
            sorted(FINAL),
            older_than,
        )
        ids = [r["job_id"] for r in ended]
        spool = await self.conn.execute("DELETE FROM spool WHERE job_id = ANY($1::uuid[])", ids)
        jobs = await self.conn.execute("DELETE FROM jobs WHERE job_id = ANY($1::uuid[])", ids)
        early = await self.conn.execute(
            "DELETE FROM cancelled_before_capture WHERE cancelled_at < $1", older_than
        )
        return {
            "jobs": int(jobs.split()[-1]),
            "spool": int(spool.split()[-1]),
            "cancelled_before_capture": int(early.split()[-1]),
        }
