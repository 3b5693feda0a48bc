"""Entry point of the pricing service."""

from pathlib import Path

from platen.messaging.service import ServiceSpec, run_service
from platen.pricing import handlers  # noqa: F401  # its handlers declare their subscriptions
from platen.pricing.store import Store
from platen.pricing.subscriptions import subscribe

SPEC = ServiceSpec(
    name="pricing",
    schema="pricing",
    migrations=Path(__file__).parent / "migrations",
    subscriptions=subscribe,
    store=Store,
)


def run() -> None:
    run_service(SPEC)


if __name__ == "__main__":
    run()
