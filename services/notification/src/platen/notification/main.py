"""Entry point of the notification service."""

from pathlib import Path

from platen.events.accounts import BalanceChanged, BalanceLow, JobCharged, UserAdded
from platen.events.jobs import JobDenied
from platen.messaging.service import ServiceSpec, run_service
from platen.notification import handlers

SPEC = ServiceSpec(
    name="notification",
    schema="notification",
    migrations=Path(__file__).parent / "migrations",
    handlers={
        "events": {
            JobCharged: handlers.on_job_charged,
            JobDenied: handlers.on_job_denied,
            BalanceChanged: handlers.on_balance_changed,
            BalanceLow: handlers.on_balance_low,
            UserAdded: handlers.on_user_added,
        },
    },
)


def run() -> None:
    run_service(SPEC)


if __name__ == "__main__":
    run()
