"""Platen's event contract: every message other systems may send or receive.

The aggregates' modules are imported when first named (`platen.events.jobs`, or
`from platen.events import jobs`), not all at once: building every pydantic model costs a
short-lived program (the CUPS backend, started by cupsd for each job) about a quarter of
a second it does not need. Decoding a message type none of the loaded modules declares
loads them all first (`registry.model_for`), so a consumer never misses a type.
"""

from __future__ import annotations

import importlib
from typing import Any

AGGREGATES = (
    "accounts",
    "client_options",
    "desktop",
    "directory",
    "identities",
    "jobs",
    "notices",
    "print_identity",
    "printers",
    "quotas",
    "reports",
    "system",
)
_FROM = {
    "Envelope": "platen.events.base",
    "Message": "platen.events.base",
    "is_valid_login": "platen.events.base",
    "ContractError": "platen.events.registry",
    "decode": "platen.events.registry",
    "encode": "platen.events.registry",
}

__all__ = sorted([*AGGREGATES, *_FROM])


def __getattr__(name: str) -> Any:
    if name in AGGREGATES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in _FROM:
        return getattr(importlib.import_module(_FROM[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
