"""`platenctl printserver add|list|remove`: print servers as broker identities.

`add` has the notification service (which holds the key to the broker's management API)
create the print server's own broker user, then writes the print server's CUPS backend
configuration, owner-only, with that user's credentials. The password is in that file and
nowhere else: it is never printed, and Platen does not keep it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

from platen.broker_setup.installation import with_credentials
from platen.ctl.common import call, fail
from platen.ctl.identity import write_private
from platen.events.discovery import amqp_url
from platen.events.identities import (
    PRINT_SERVER_NAME_PATTERN,
    AddPrintServer,
    ListPrintServers,
    PrintServerCredential,
    PrintServerList,
    RemovePrintServer,
)

printserver_app = typer.Typer(
    help="Print servers: each signs in to Platen as itself.", no_args_is_help=True
)

DEFAULT_STATE_DIR = "/var/lib/platen/cups-backend"


def backend_config(
    credential: PrintServerCredential, url: str, state_dir: str, login_domains: str = ""
) -> str:
    """The CUPS backend's INI file (platen.cups_backend.config) for this print server."""
    domains = f"login_domains = {login_domains}\n" if login_domains else ""
    signed_in = with_credentials(url, credential.username, credential.password)
    # configparser reads `%` as the start of an interpolation: a URL's escapes are doubled.
    return (
        f"# Platen CUPS backend of print server {credential.name}.\n"
        "# It holds the print server's broker password: keep it readable by root only\n"
        "# (CUPS runs the backend as root when its file mode is 0700).\n"
        "[platen]\n"
        f"amqp_url = {signed_in.replace('%', '%%')}\n"
        f"server_id = {credential.name}\n"
        f"state_dir = {state_dir.replace('%', '%%')}\n"
        f"{domains}"
    )


@printserver_app.command("add")
def add(
    name: str,
    output: Annotated[
        Path | None,
        typer.Option(help="Backend config file to write (default: platen-printserver-NAME.conf)."),
    ] = None,
    url: Annotated[
        str | None,
        typer.Option(help="Broker address the print server uses (default: platenctl's)."),
    ] = None,
    state_dir: Annotated[
        str, typer.Option(help="Where the backend keeps its job ids on the print server.")
    ] = DEFAULT_STATE_DIR,
    login_domains: Annotated[
        str,
        typer.Option(
            help="Domains and realms taken off CUPS user names, comma-separated "
            "(CORP: CORP\\alice prints as alice; * for every domain)."
        ),
    ] = "",
) -> None:
    """Give print server NAME a broker identity of its own and write its CUPS backend
    config file (install it as /etc/platen/cups-backend.conf on that print server).

    The file holds the password: it is created readable by its owner only. Adding a print
    server again issues a new password; the previous one stops working.
    """
    if re.search(r"[^A-Za-z0-9_.*, -]", login_domains):
        raise fail(f"--login-domains {login_domains!r}: domain names, comma-separated")
    reply = call(AddPrintServer(name=_checked(name)))
    path = output or Path(f"platen-printserver-{name}.conf")
    write_private(path, backend_config(reply, url or amqp_url(), state_dir, login_domains))
    typer.echo(f"wrote {path} for print server {name} as {reply.username} (owner-only)")


def _checked(name: str) -> str:
    if not re.fullmatch(PRINT_SERVER_NAME_PATTERN, name):
        raise fail(f"{name!r} is not a print server name (up to 64 letters, digits, _ . -)")
    return name


def _show(reply: PrintServerList) -> None:
    if not reply.print_servers:
        typer.echo("no print servers")
    for server in reply.print_servers:
        typer.echo(f"{server.name}\t{server.username}\tadded {server.added_at:%Y-%m-%d %H:%M}")


@printserver_app.command("list")
def list_() -> None:
    """The print servers that have a broker identity."""
    _show(call(ListPrintServers()))


@printserver_app.command("remove")
def remove(name: str) -> None:
    """Delete print server NAME's broker identity: it is signed out and cannot sign in."""
    reply = call(RemovePrintServer(name=_checked(name)))
    typer.echo(f"removed print server {name}")
    _show(reply)
