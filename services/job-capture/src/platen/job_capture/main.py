"""Entry point of the job-capture service."""

from pathlib import Path

from platen.events.jobs import (
    JobAuthorized,
    JobCancelled,
    JobDenied,
    JobPriced,
    ListJobs,
    SubmitJob,
)
from platen.job_capture import handlers
from platen.messaging.service import ServiceSpec, run_service

SPEC = ServiceSpec(
    name="job-capture",
    schema="job_capture",
    migrations=Path(__file__).parent / "migrations",
    handlers={
        "events": {
            JobPriced: handlers.on_priced,
            JobAuthorized: handlers.on_authorized,
            JobDenied: handlers.on_denied,
            JobCancelled: handlers.on_cancelled,
        },
        "commands": {SubmitJob: handlers.on_submit, ListJobs: handlers.on_list},
    },
)


def run() -> None:
    run_service(SPEC)


if __name__ == "__main__":
    run()
