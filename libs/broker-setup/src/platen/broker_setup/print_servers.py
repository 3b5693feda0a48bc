"""Print servers as broker identities: one broker user per print server, and how a
service tells from a message's `user_id` which print server sent it.

A print server named NAME signs in as `platen-print-server.NAME` (with an installation's
user prefix before it, if any). That keeps it apart from every desktop user: desktop
broker users are named after logins, and no login may hold `platen-` at its start or after
a separator (`is_reserved_login`).
RabbitMQ checks a message's `user_id` against the user that signed in, so the name read
back from `user_id` is proven, never claimed.
"""

from __future__ import annotations

import re

from platen.broker_setup import permissions
from platen.broker_setup.broker_admin import BrokerAdmin, new_password
from platen.events.identities import PRINT_SERVER_NAME_PATTERN
from platen.events.routing import PRINT_SERVER_MARKER, print_server_of

MARKER = PRINT_SERVER_MARKER
NAME_PATTERN = PRINT_SERVER_NAME_PATTERN


def valid_name(name: str) -> bool:
    return re.fullmatch(NAME_PATTERN, name) is not None


def broker_user(name: str, user_prefix: str = "") -> str:
    """The broker user print server `name` signs in as."""
    if not valid_name(name):
        raise ValueError(f"{name!r} is not a print server name (letters, digits, _ . -)")
    return f"{user_prefix}{MARKER}{name}"


def name_of(user_id: str | None) -> str | None:
    """The print server a message came from, from its broker-checked `user_id`; None when
    the sender is not a print server (a service, `platenctl`) or did not say who it is."""
    name = print_server_of(user_id)
    return name if name is not None and valid_name(name) else None


async def issue(
    admin: BrokerAdmin, name: str, user_prefix: str = "", *, password: str | None = None
) -> tuple[str, str]:
    """Create or renew print server `name`'s broker user with only a print server's
    permissions; returns (user, new password). The previous password stops working, and
    connections made with it are closed. `password`: one made already (by a handler that
    replies with it once this runs after its commit)."""
    user = broker_user(name, user_prefix)
    password = password or new_password()
    await admin.set_password(user, password)
    await admin.grant(user, permissions.print_server(user))
    await admin.disconnect(user, "the print server's credential was renewed")
    return user, password


async def withdraw(admin: BrokerAdmin, user: str) -> None:
    """Delete a print server's broker user and close its connections."""
    await admin.revoke(user)
    await admin.disconnect(user, "the print server was removed from Platen")
    await admin.delete_user(user)
