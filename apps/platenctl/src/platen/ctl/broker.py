"""`platenctl broker setup`: install Platen's topology and identities on a broker."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from platen.broker_setup.broker_admin import BrokerAdminError
from platen.broker_setup.installation import install
from platen.ctl.common import fail
from platen.ctl.identity import write_private

broker_app = typer.Typer(help="Install Platen on a RabbitMQ broker.", no_args_is_help=True)


@broker_app.command("setup")
def setup(
    amqp_url: Annotated[str, typer.Option(help="The broker as an administrator (amqp[s]://).")],
    management_url: Annotated[
        str, typer.Option(help="Its management API as an administrator (http[s]://u:p@h:15672).")
    ],
    out: Annotated[Path, typer.Option(help="Folder for the identities' environment files.")],
    disable_guest: Annotated[
        bool, typer.Option(help="Delete the broker's default guest user.")
    ] = False,
) -> None:
    """Declare the topology, give each service, platenctl and print servers a broker user
    of their own, and write one owner-only environment file per identity into OUT.

    Run again after an upgrade: every step is idempotent, and the passwords are renewed
    (restart the services with the new files).
    """
    try:
        installed = asyncio.run(install(amqp_url, management_url, disable_guest=disable_guest))
    except (BrokerAdminError, OSError) as exc:
        raise fail(f"broker setup failed: {exc}") from None
    out.mkdir(parents=True, exist_ok=True)
    for identity, url in installed.urls.items():
        text = f"PLATEN_AMQP_URL={url}\n"
        if identity == "notification":
            text += f"PLATEN_BROKER_MANAGEMENT_URL={installed.identity_manager_url}\n"
        if identity == "job-capture":
            text += f"PLATEN_BROKER_MONITOR_URL={installed.presence_monitor_url}\n"
        write_private(out / f"{identity}.env", text)
    typer.echo(f"topology declared; {len(installed.urls)} identities written to {out}/")
