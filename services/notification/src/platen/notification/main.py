"""Entry point of the notification service."""

from pathlib import Path

from platen.events.accounts import (
    BalanceChanged,
    BalanceLow,
    JobCharged,
    UserAdded,
    UserDisabled,
    UserEnabled,
)
from platen.events.identities import IssueCredential
from platen.events.jobs import JobDenied
from platen.messaging.service import ServiceSpec, run_service
from platen.notification import handlers, identities

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
            UserDisabled: identities.on_user_disabled,
            UserEnabled: identities.on_user_enabled,
        },
        "commands": {
            IssueCredential: identities.on_issue_credential,
        },
    },
    on_ready=[identities.start],
)


def run() -> None:
    run_service(SPEC)


if __name__ == "__main__":
    run()
