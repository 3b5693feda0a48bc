"""A `capture.submit` command as the benches' integrator sends it (bench/outage.py,
bench/chaos.py)."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime

import aio_pika

from platen.events.discovery import signed_in_as
from platen.events.jobs import SubmitJob
from platen.events.registry import encode
from platen.messaging.codec import build


def submit_command(
    url: str,
    job_id: uuid.UUID,
    user: str,
    document: bytes,
    *,
    name: str = "bench.pdf",
    deadline_seconds: int | None = None,
) -> aio_pika.Message:
    """Job `job_id` of `user` on printer lab-1, sent by whoever `url` signs in as. Keep the
    message to send it again: its id is what job-capture de-duplicates on."""
    job = SubmitJob(
        job_id=job_id,
        user=user,
        printer="lab-1",
        document_name=name,
        document=base64.b64encode(document),
        deadline_seconds=deadline_seconds,
    )
    return build(
        body=encode(job),
        message_type=job.message_type,
        schema_version=job.schema_version,
        producer="bench",
        message_id=str(uuid.uuid4()),
        correlation_id=str(job_id),
        occurred_at=datetime.now(UTC),
        # job-capture answers only a sender it can name (the broker checks it).
        user_id=signed_in_as(url),
    )
