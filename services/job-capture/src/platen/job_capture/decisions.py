"""Tell a waiting CUPS backend that its job was decided, the moment the decision commits.

The backend of a CUPS job waits (one process per job, started by cupsd) until job-capture
releases, denies or cancels the job. It binds its reply queue under the job's decision key
(`platen.events.routing.decision_key`: its print server's name and the job id) before it
asks the job's status, so whatever commits after that question is pushed to it here.

The push carries the decision, and the backend takes it as a status question's answer
(`cups_backend.main.pushed_decision`): only this service may publish under decision keys,
and a waiting job reaches one decided state only, so a push that arrives late, twice or
out of order (aiormq hands deliveries to tasks of their own) changes nothing but how soon
the backend knows; a lost one is found by the backend's slow check (every 30 s). So it
is sent once, after the commit, not mandatory (no backend waiting: nothing to wake), and
never retried.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import structlog

from platen.events.jobs import JobStatus
from platen.events.registry import encode
from platen.events.routing import REPLIES, decision_key
from platen.job_capture.domain import Job
from platen.messaging.codec import build

log = structlog.get_logger(__name__)

# The states the backend stops waiting at (its FINAL): released (or charged unconfirmed)
# to print, or closed.
DECIDED = frozenset({"released", "unconfirmed", "printed", "denied", "cancelled", "failed"})


def tell_backend(ctx: Any, job: Job) -> None:
    """Once this transaction commits, push `job`'s new state to its print server's backend
    (CUPS jobs only; nothing for a job still waiting)."""
    if job.print_server is None or job.state not in DECIDED or ctx.publisher is None:
        return
    key = decision_key(job.print_server, job.job_id)
    status = JobStatus(job_id=job.job_id, state=job.state, reason=job.reason)
    producer = ctx.producer

    async def push() -> None:
        message = build(
            body=encode(status),
            message_type=status.message_type,
            schema_version=status.schema_version,
            producer=producer,
            message_id=str(uuid.uuid4()),
            correlation_id=str(job.job_id),
            occurred_at=datetime.now(UTC),
        )
        try:
            await ctx.publisher.publish(REPLIES, key, message, mandatory=False)
        except Exception as exc:
            # Committed already; the backend's slow check finds the decision.
            log.info("decision not pushed", job_id=str(job.job_id), error=repr(exc))

    ctx.after_commit(push)
