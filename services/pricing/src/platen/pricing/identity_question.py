"""The question a user is asked about a job nobody proved was theirs. Pure logic.

job-capture marks a job `unverified` when nothing proves its named user sent it (no
authenticated queue, and their own desktop is not the only one at the job's host). Such a
job is confirmed by its user or never printed: pricing, which decides what the user is
asked, makes it a `confirm` job with this question first among its messages.
"""

from __future__ import annotations

from datetime import datetime

from platen.events.jobs import JobCaptured
from platen.events.print_identity import IDENTITY_QUESTION


def needs_question(event: JobCaptured) -> bool:
    return event.identity == "unverified"


def question(document_name: str, origin_host: str | None, captured_at: datetime) -> str:
    """ "Did you print 'report.pdf' from HOST at 14:02?", at the server's local time."""
    host = origin_host or "an unknown computer"
    at = captured_at.astimezone().strftime("%H:%M")
    return IDENTITY_QUESTION.format(document=document_name, host=host, time=at)
