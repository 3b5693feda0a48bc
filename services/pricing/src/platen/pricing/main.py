"""Entry point of the pricing service."""

from pathlib import Path

from platen.events.jobs import JobCaptured
from platen.events.printers import AddPrinter, ShowPrinter
from platen.messaging.service import ServiceSpec, run_service
from platen.pricing import handlers

SPEC = ServiceSpec(
    name="pricing",
    schema="pricing",
    migrations=Path(__file__).parent / "migrations",
    handlers={
        "events": {JobCaptured: handlers.on_job_captured},
        "commands": {
            AddPrinter: handlers.on_add_printer,
            ShowPrinter: handlers.on_show_printer,
        },
    },
)


def run() -> None:
    run_service(SPEC)


if __name__ == "__main__":
    run()
