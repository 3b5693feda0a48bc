"""Entry point of the account-ledger service."""

from pathlib import Path

# The modules whose handlers declare their subscriptions.
from platen.account_ledger.handlers import accounts, jobs, money, reports, users  # noqa: F401
from platen.account_ledger.store import Store
from platen.account_ledger.subscriptions import subscribe
from platen.messaging.service import ServiceSpec, run_service

SPEC = ServiceSpec(
    name="account-ledger",
    schema="ledger",
    migrations=Path(__file__).parent / "migrations",
    subscriptions=subscribe,
    store=Store,
)


def run() -> None:
    run_service(SPEC)


if __name__ == "__main__":
    run()
