"""Entry point of the account-ledger service."""

from pathlib import Path

# The modules whose handlers declare their subscriptions.
from platen.account_ledger.handlers import (  # noqa: F401
    accounts,
    jobs,
    money,
    quotas,
    reports,
    users,
)
from platen.account_ledger.quota_schedule import start_quota_schedule
from platen.account_ledger.store import Store
from platen.account_ledger.subscriptions import subscribe
from platen.messaging.service import ServiceSpec, run_service

SPEC = ServiceSpec(
    name="account-ledger",
    schema="ledger",
    migrations=Path(__file__).parent / "migrations",
    subscriptions=subscribe,
    store=Store,
    on_ready=[start_quota_schedule],
)


def run() -> None:
    run_service(SPEC)


if __name__ == "__main__":
    run()
