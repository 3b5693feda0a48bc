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
from platen.notification import broadcasts, handlers, prompts
from platen.notification.broker_identities import BrokerIdentities
from platen.notification.identities import IdentityHandlers
from platen.notification.print_servers import PrintServerHandlers, on_list
from platen.notification.store import Store

# The broker's side of identities: one object, configured by its start hook once the
# service is up, that the identity handlers hand their broker effects to.
BROKER = BrokerIdentities()
IDENTITIES = IdentityHandlers(BROKER)
PRINT_SERVERS = PrintServerHandlers(BROKER)

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
            UserAdded: IDENTITIES.on_user_added,
            UserDisabled: IDENTITIES.on_user_disabled,
            UserEnabled: IDENTITIES.on_user_enabled,
            JobInputRequired: prompts.on_input_required,
            JobAuthorized: prompts.on_job_authorized,
            JobCancelled: prompts.on_job_cancelled,
        },
        "commands": {
            IssueCredential: IDENTITIES.on_issue_credential,
            Broadcast: broadcasts.on_broadcast,
            AddPrintServer: PRINT_SERVERS.on_add,
            RemovePrintServer: PRINT_SERVERS.on_remove,
            ListPrintServers: on_list,
        },
        "replies": {JobAnswer: prompts.on_answer},
        "answers": {AnswerOutcome: prompts.on_outcome, ErrorReply: prompts.on_refusal},
    },
    on_ready=[BROKER.start],
    store=Store,
)


def run() -> None:
    run_service(SPEC)


if __name__ == "__main__":
    run()
