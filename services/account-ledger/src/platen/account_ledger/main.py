"""Entry point of the account-ledger service."""

from pathlib import Path

from platen.account_ledger.handlers import accounts, jobs, money, reports, users
from platen.account_ledger.store import Store
from platen.events.accounts import (
    AddAccount,
    AddUser,
    Adjust,
    AnswerJob,
    GrantAccess,
    ListAccounts,
    Refund,
    RevokeAccess,
    SetAccount,
    SetUser,
    ShowAccount,
    ShowUser,
    Statement,
    TopUp,
    Transfer,
    VerifyLedger,
)
from platen.events.jobs import (
    JobCancelled,
    JobFailed,
    JobPriced,
    JobPrinted,
    JobUnconfirmed,
)
from platen.messaging.service import ServiceSpec, run_service

SPEC = ServiceSpec(
    name="account-ledger",
    schema="ledger",
    migrations=Path(__file__).parent / "migrations",
    store=Store,
    handlers={
        "events": {
            JobPriced: jobs.on_job_priced,
            JobPrinted: jobs.on_job_printed,
            JobUnconfirmed: jobs.on_job_printed,
            JobFailed: jobs.on_job_not_printed,
            JobCancelled: jobs.on_job_not_printed,
        },
        "commands": {
            AddUser: users.on_add_user,
            SetUser: users.on_set_user,
            ShowUser: users.on_show_user,
            AddAccount: accounts.on_add_account,
            SetAccount: accounts.on_set_account,
            GrantAccess: accounts.on_grant,
            RevokeAccess: accounts.on_revoke,
            ShowAccount: accounts.on_show_account,
            ListAccounts: accounts.on_list_accounts,
            TopUp: money.on_topup,
            Adjust: money.on_adjust,
            Refund: money.on_refund,
            Transfer: money.on_transfer,
            Statement: reports.on_statement,
            VerifyLedger: reports.on_verify,
            AnswerJob: jobs.on_answer,
        },
    },
)


def run() -> None:
    run_service(SPEC)


if __name__ == "__main__":
    run()
