"""Entry point of the notification service."""

from pathlib import Path

from platen.events.accounts import (
    AnswerOutcome,
    BalanceChanged,
    BalanceLow,
    JobCharged,
    JobInputRequired,
    UserAdded,
    UserDisabled,
    UserEnabled,
)
from platen.events.desktop import Broadcast, JobAnswer
from platen.events.identities import (
    AddPrintServer,
    IssueCredential,
    ListPrintServers,
    RemovePrintServer,
)
from platen.events.jobs import JobAuthorized, JobCancelled, JobDenied
from platen.events.system import ErrorReply
from platen.messaging.service import ServiceSpec, run_service
from platen.notification import broadcasts, handlers, identities, print_servers, prompts

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
            JobInputRequired: prompts.on_input_required,
            JobAuthorized: prompts.on_job_authorized,
            JobCancelled: prompts.on_job_cancelled,
        },
        "commands": {
            IssueCredential: identities.on_issue_credential,
            Broadcast: broadcasts.on_broadcast,
            AddPrintServer: print_servers.on_add,
            RemovePrintServer: print_servers.on_remove,
            ListPrintServers: print_servers.on_list,
        },
        "replies": {JobAnswer: prompts.on_answer},
        "answers": {AnswerOutcome: prompts.on_outcome, ErrorReply: prompts.on_refusal},
    },
    on_ready=[identities.start, print_servers.start],
)


def run() -> None:
    run_service(SPEC)


if __name__ == "__main__":
    run()
