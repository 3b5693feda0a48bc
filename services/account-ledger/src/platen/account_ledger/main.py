"""Entry point of the account-ledger service."""

from pathlib import Path

import structlog

# The modules whose handlers declare their subscriptions.
from platen.account_ledger import directory
from platen.account_ledger.handlers import (  # noqa: F401
    accounts,
    common,
    jobs,
    money,
    quotas,
    reports,
    users,
)
from platen.account_ledger.handlers import (
    directory as directory_handlers,
)
from platen.account_ledger.quota_schedule import interval, start_quota_schedule
from platen.account_ledger.store import Store
from platen.account_ledger.subscriptions import subscribe
from platen.messaging.handling import outside_transaction
from platen.messaging.service import ServiceSpec, run_service

log = structlog.get_logger(__name__)

SPEC = ServiceSpec(
    name="account-ledger",
    schema="ledger",
    migrations=Path(__file__).parent / "migrations",
    subscriptions=subscribe,
    store=Store,
    on_ready=[start_quota_schedule],
    settings=[common.default_low_balance, jobs.input_deadline, reports.max_hold_age, interval],
)


def run() -> None:
    # The site's directory, read before the transactions of the handlers that need it.
    site = directory.from_env()
    log.info("directory", source=site.source if site else None)
    outside_transaction(directory_handlers.on_sync, directory_handlers.list_all(site))
    outside_transaction(jobs.on_job_priced, directory_handlers.look_up(site))
    run_service(SPEC)


if __name__ == "__main__":
    run()
