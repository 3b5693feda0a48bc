"""Who may send a command: checked by the AMQP `user_id`, which the broker proves.

Broker permissions decide which routing keys an identity may publish on `platen.commands`;
this decides, in the consumer, which identities a command is accepted from, whatever
route it took (a queue can be reached by name through the default exchange). A command
that moves money or changes identities declares its senders on its handler
(`@subscribe.command(TopUp, senders=("admin",))`); the rest are open to whoever the broker
lets publish them.

The identities are named as the installer names them (`installation.identity_user`), under
the user prefix the service's own broker user shows. A service that does not sign in as
its own identity (one broker user shared by every part, as some benchmarks run) has no
other identity to tell apart, and checks nothing; it says so when it starts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from platen.messaging.installation import identity_user, prefix_of

# What platenctl alone may send: money, users, accounts, printers, identities.
ADMIN = ("admin",)
NOBODY = "a sender that did not say who it is (no AMQP user_id)"


@dataclass(frozen=True)
class SenderCheck:
    service: str
    # The broker user this service signs in as (None: by certificate, name unknown).
    own_user: str | None

    @property
    def active(self) -> bool:
        return prefix_of(self.own_user, self.service) is not None

    def refusal(
        self, message_type: str, allowed: Iterable[str] | None, user_id: str | None
    ) -> str | None:
        """Why a `message_type` from broker user `user_id` is refused; None if accepted."""
        prefix = prefix_of(self.own_user, self.service)
        if allowed is None or prefix is None:
            return None
        identities = sorted(allowed)
        if user_id in {identity_user(i, prefix) for i in identities}:
            return None
        return (
            f"{message_type} is accepted only from {' or '.join(identities)}; "
            f"this one came from {user_id or NOBODY}"
        )
