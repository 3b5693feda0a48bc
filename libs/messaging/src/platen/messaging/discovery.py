"""Every installed service's `ServiceSpec`, found through the `platen.services` entry points.

Libs never import services, yet the installer (the whole topology, every identity's
permissions), `platenctl` and the AsyncAPI document need every service's declarations.
Each service names its spec in its pyproject.toml (`[project.entry-points."platen.services"]`),
so a new service is found without an edit here.
"""

from __future__ import annotations

import functools
import importlib.metadata
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from platen.messaging.service import ServiceSpec

ENTRY_POINTS = "platen.services"


@functools.cache
def specs() -> dict[str, ServiceSpec]:
    """Service name -> its spec, in name order."""
    found = [ep.load() for ep in importlib.metadata.entry_points(group=ENTRY_POINTS)]
    if not found:
        raise LookupError(f"no service is installed (entry points {ENTRY_POINTS!r})")
    return {spec.name: spec for spec in sorted(found, key=lambda s: s.name)}


def spec(name: str) -> ServiceSpec:
    try:
        return specs()[name]
    except KeyError:
        raise ValueError(f"unknown service {name!r}; one of: {', '.join(specs())}") from None


def command_prefixes() -> dict[str, str]:
    """Service name -> the prefix of the commands it answers (`<prefix>.ping`)."""
    return {name: s.subscriptions.command_prefix for name, s in specs().items()}
