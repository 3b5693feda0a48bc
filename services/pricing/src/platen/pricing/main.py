"""Entry point of the pricing service."""

from pathlib import Path

from platen.events.accounts import UserGroupsSet
from platen.events.jobs import JobCaptured
from platen.events.printers import (
    AddPrinter,
    QuoteJob,
    SetCostModel,
    SetPolicy,
    SetPrinterGroups,
    ShowPrinter,
)
from platen.messaging.service import ServiceSpec, run_service
from platen.pricing import handlers
from platen.pricing.store import Store

SPEC = ServiceSpec(
    name="pricing",
    schema="pricing",
    migrations=Path(__file__).parent / "migrations",
    handlers={
        "events": {
            JobCaptured: handlers.on_job_captured,
            UserGroupsSet: handlers.on_user_groups_set,
        },
        "commands": {
            AddPrinter: handlers.on_add_printer,
            SetCostModel: handlers.on_set_cost_model,
            SetPrinterGroups: handlers.on_set_printer_groups,
            SetPolicy: handlers.on_set_policy,
            ShowPrinter: handlers.on_show_printer,
            QuoteJob: handlers.on_quote,
        },
    },
    store=Store,
)


def run() -> None:
    run_service(SPEC)


if __name__ == "__main__":
    run()
