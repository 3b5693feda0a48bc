"""Messages the ledger's tests send, built the same way in every tier."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal as D

from platen.events.jobs import JobCancelled, JobPriced, JobPrinted


def priced(
    user: str = "alice", cost: str = "0.30", job_id: uuid.UUID | None = None, **kw
) -> JobPriced:
    return JobPriced(
        job_id=job_id or uuid.uuid4(),
        user=user,
        printer="lab-1",
        document_name="doc.pdf",
        sides=3,
        copies=1,
        cost=D(cost),
        **kw,
    )


def printed(event: JobPriced) -> JobPrinted:
    return JobPrinted(
        job_id=event.job_id,
        user=event.user,
        printer=event.printer,
        document_name=event.document_name,
        pages=event.sides,
        copies=event.copies,
        printed_at=datetime.now(UTC),
    )


def cancelled(event: JobPriced, reason: str = "by the user") -> JobCancelled:
    return JobCancelled(
        job_id=event.job_id,
        user=event.user,
        printer=event.printer,
        document_name=event.document_name,
        reason=reason,
    )
