"""Platen's event contract: every message other systems may send or receive."""

from platen.events import (
    accounts,
    client_options,
    desktop,
    directory,
    identities,
    jobs,
    notices,
    print_identity,
    printers,
    quotas,
    reports,
    system,
)
from platen.events.base import Envelope, Message, is_valid_login
from platen.events.registry import ContractError, decode, encode

__all__ = [
    "ContractError",
    "Envelope",
    "Message",
    "accounts",
    "client_options",
    "decode",
    "desktop",
    "directory",
    "encode",
    "identities",
    "is_valid_login",
    "jobs",
    "notices",
    "print_identity",
    "printers",
    "quotas",
    "reports",
    "system",
]
