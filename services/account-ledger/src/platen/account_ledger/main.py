"""Entry point of the account-ledger service."""

from pathlib import Path

from platen.account_ledger import handlers
from platen.events.accounts import AddUser, ShowUser
from platen.events.jobs import JobCancelled, JobFailed, JobPriced, JobPrinted
from platen.messaging.service import ServiceSpec, run_service

SPEC = ServiceSpec(
    name="account-ledger",
    schema="ledger",
    migrations=Path(__file__).parent / "migrations",
    handlers={
        "events": {
            JobPriced: handlers.on_job_priced,
            JobPrinted: handlers.on_job_printed,
            JobFailed: handlers.on_job_not_printed,
            JobCancelled: handlers.on_job_not_printed,
        },
        "commands": {AddUser: handlers.on_add_user, ShowUser: handlers.on_show_user},
    },
)


def run() -> None:
    run_service(SPEC)


if __name__ == "__main__":
    run()
