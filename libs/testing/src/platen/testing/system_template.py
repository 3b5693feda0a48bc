"""Every service's schema, migrated once per test session (per xdist worker) in a template
database that each whole-system test copies, instead of running four `migrate` processes
per test.

The template is provisioned exactly as an installer does (`python -m <service> migrate`,
platen.db.roles): each schema belongs to its owner role and each service signs in as its
own role. Roles belong to the whole PostgreSQL server, so a copy keeps the template's
roles (named after the template, with the passwords made for this session); the tests of
one worker run one after another, so no two systems use them at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from platen.localstack.services import provision, run_module
from platen.testing.isolation import clone_database, create_database, drop_database, with_database


@dataclass(frozen=True)
class SystemTemplate:
    admin_dsn: str
    name: str
    # service name -> the URL it signs in with on the template (its own role)
    database_urls: dict[str, str]

    async def copy(self) -> tuple[str, str, dict[str, str]]:
        """A fresh copy: its name, the superuser's URL on it, and each service's."""
        logins = sorted({urlsplit(url).username or "" for url in self.database_urls.values()})
        name, url = await clone_database(self.admin_dsn, self.name, logins)
        services = {svc: with_database(u, name) for svc, u in self.database_urls.items()}
        return name, url, services


@asynccontextmanager
async def system_template(
    admin_dsn: str, run: Callable[..., Any] = run_module, *, drop: bool = True
) -> AsyncIterator[SystemTemplate]:
    """A migrated template on `admin_dsn`'s server (a superuser's), dropped with its roles
    afterwards unless `drop` is false (a server deleted whole at the run's end, where the
    copies are left too: the template's roles own their objects, so they could not go).
    `run` starts each `migrate` (platen.localstack.services.run_module)."""
    name, url = await create_database(admin_dsn, prefix="template")
    try:
        yield SystemTemplate(admin_dsn, name, await asyncio.to_thread(provision, url, run))
    finally:
        if drop:
            await drop_database(admin_dsn, name)
