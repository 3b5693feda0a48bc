"""Entry point of the job-capture service."""

from pathlib import Path

# The modules whose handlers declare their subscriptions.
from platen.job_capture import (  # noqa: F401
    analyse_only,
    backend_reports,
    expiry,
    handlers,
    presence,
    print_identity,
)
from platen.job_capture.expiry import start_expiry
from platen.job_capture.metrics import register as register_metrics
from platen.job_capture.store import Store
from platen.job_capture.subscriptions import subscribe
from platen.messaging.service import ServiceSpec, run_service

SPEC = ServiceSpec(
    name="job-capture",
    schema="job_capture",
    migrations=Path(__file__).parent / "migrations",
    subscriptions=subscribe,
    on_ready=[start_expiry, presence.start],
    store=Store,
    metrics=[register_metrics],
    settings=[
        handlers.max_document_bytes,
        handlers.default_deadline_seconds,
        expiry.interval,
        expiry.release_timeout,
    ],
)


def run() -> None:
    run_service(SPEC)


if __name__ == "__main__":
    run()
