"""Who may send a command: checked by the AMQP `user_id`, which the broker proves.

Broker permissions decide which routing keys an identity may publish on `platen.commands`;
this decides, in the consumer, which identities a command is accepted from, whatever
route it took (a queue can be reached by name through the default exchange). A command
that moves money or changes identities declares its senders on its handler
(`@subscribe.command(TopUp, senders=("admin",))`); the rest are open to whoever the broker
lets publish them.

The identities are named here (`identity_user`), and the installer makes their broker
users by these names, under the user prefix the service's own broker user shows. A
service that does not sign in as its own identity (one broker user shared by every
part, as some benchmarks run) has no other identity to tell apart, and checks nothing; it
says so when it starts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# What platenctl alone may send: money, users, accounts, printers, identities.
ADMIN = ("admin",)
# The broker user platenctl signs in as (under the installation's user prefix).
ADMIN_USER = "platen-admin"

# What the CUPS backend sends job-capture, and nothing more (not the job list, not
# another service's commands): submit, ask, cancel before printing, heartbeat, outcome.
# Here, not with the permissions, because the consumer reads it too (marks.py): the
# runtime needs no broker-setup code to tell a print server's command from a service's.
PRINT_SERVER_COMMANDS = (
    "capture.submit",
    "capture.job.status",
    "capture.job.cancel",
    "capture.job.heartbeat",
    "capture.job.outcome",
)
NOBODY = "a sender that did not say who it is (no AMQP user_id)"

# A message this service dead-letters, and a dead letter it replays, are published again
# as this service (the broker lets nobody publish under another's user_id), so the copy
# names its first sender here, taken from the broker-checked user_id of the delivery it
# copies. It is believed only on a delivery whose user_id is this service's own: nobody
# else can make the broker pass that, so a header a sender wrote itself counts for nothing.
FIRST_SENDER = "platen-first-sender"


def sender_of(user_id: str | None, headers: dict | None, own_user: str | None) -> str | None:
    """Who sent a delivery, as the broker proved it: its `user_id`, or, on a copy this
    service made itself (a dead letter, a replay), the first sender the copy names."""
    if own_user and user_id == own_user:
        first = (headers or {}).get(FIRST_SENDER)
        if isinstance(first, bytes):
            first = first.decode(errors="replace")
        if isinstance(first, str) and first:
            return first
    return user_id


def copied_headers(
    headers: dict | None, user_id: str | None, own_user: str | None, drop: tuple[str, ...] = ()
) -> tuple[dict, str | None]:
    """The headers of a copy this service publishes of a delivery (without `drop`), naming
    the delivery's first sender, and the `user_id` the copy goes out with (this service's
    own, which makes the broker vouch for the header; None when it names nobody)."""
    copy = {k: v for k, v in (headers or {}).items() if k not in drop and k != FIRST_SENDER}
    first = sender_of(user_id, headers, own_user)
    if not (own_user and first):
        return copy, None
    copy[FIRST_SENDER] = first
    return copy, own_user


def service_user(service: str) -> str:
    return f"platen-{service}"


def identity_user(identity: str, user_prefix: str = "") -> str:
    """The broker user an identity signs in as: a service (by its name), or "admin"."""
    return user_prefix + (ADMIN_USER if identity == "admin" else service_user(identity))


def prefix_of(user: str | None, service: str) -> str | None:
    """The user prefix of the installation whose `service` signs in as broker user `user`;
    None when `user` is not an identity the installer made for that service (every part
    signed in as one shared user, as some benchmarks do)."""
    own = service_user(service)
    if user is None or not user.endswith(own):
        return None
    return user[: -len(own)]


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
