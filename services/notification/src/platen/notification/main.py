"""Entry point of the notification service."""

from pathlib import Path

from platen.messaging.service import ServiceSpec, run_service

# The modules whose handlers declare their subscriptions.
from platen.notification import (  # noqa: F401
    broadcasts,
    desktop_options,
    handlers,
    notices,
    prompts,
)
from platen.notification.broker_identities import BrokerIdentities
from platen.notification.identities import IdentityHandlers
from platen.notification.mail import SENDER
from platen.notification.print_servers import PrintServerHandlers
from platen.notification.signin_http import start as start_sign_in
from platen.notification.store import Store
from platen.notification.subscriptions import subscribe

# The broker's side of identities: one object, configured by its start hook once the
# service is up, that the identity handlers hand their broker effects to.
BROKER = BrokerIdentities()
IDENTITIES = IdentityHandlers(BROKER)
PRINT_SERVERS = PrintServerHandlers(BROKER)
subscribe.bind(IDENTITIES)
subscribe.bind(PRINT_SERVERS)

SPEC = ServiceSpec(
    name="notification",
    schema="notification",
    migrations=Path(__file__).parent / "migrations",
    subscriptions=subscribe,
    # The sign-in endpoint after the identities: it issues desktop credentials through them.
    on_ready=[BROKER.start, SENDER.start, lambda rt: start_sign_in(BROKER, rt)],
    store=Store,
    settings=[prompts.require_user_id, prompts.answer_rates, desktop_options.hello_rates],
)


def run() -> None:
    run_service(SPEC)


if __name__ == "__main__":
    run()
