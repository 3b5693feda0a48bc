"""`platenctl user credential`: let a user's desktop client sign in to the broker.
`platenctl user desktops` and `user revoke-desktop`: the desktops a user signed in from
with their directory password (`platen-client --sign-in`), each revoked alone."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from platen.ctl.common import call
from platen.events.discovery import amqp_url, with_login
from platen.events.identities import (
    Credential,
    DesktopList,
    IssueCredential,
    ListDesktops,
    RevokeDesktop,
)


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` readable by its owner only, even if `path` existed."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def client_config(credential: Credential, url: str) -> str:
    """The client's TOML config file: the broker (without credentials), who signs in."""
    bare = with_login(url, "", "")  # the nodes alone (one or several), no credentials
    # JSON strings are TOML basic strings: this quotes whatever the values hold.
    return (
        "# Platen desktop client: who this desktop signs in as. Keep it private.\n"
        f"url = {json.dumps(bare)}\n"
        f"user = {json.dumps(credential.username)}\n"
        f"password = {json.dumps(credential.password)}\n"
    )


def register(user_app: typer.Typer) -> None:
    @user_app.command("credential")
    def credential(
        login: str,
        output: Annotated[
            Path | None, typer.Option(help="Config file to write (default: platen-LOGIN.toml).")
        ] = None,
        url: Annotated[
            str | None,
            typer.Option(help="Broker address desktops use (default: the one platenctl uses)."),
        ] = None,
    ) -> None:
        """Issue LOGIN a new desktop credential and write their client's config file.

        The file holds the password: it is created readable by its owner only. Issuing a
        new credential makes the previous one stop working.
        """
        reply = call(IssueCredential(login=login))
        path = output or Path(f"platen-{login}.toml")
        write_private(path, client_config(reply, url or amqp_url()))
        typer.echo(f"wrote {path} for {login} (owner-only; copy it to their desktop)")

    @user_app.command("desktops")
    def desktops(
        login: str,
        as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
    ) -> None:
        """The desktops LOGIN signed in from with their directory password."""
        show_desktops(call(ListDesktops(login=login)), as_json)

    @user_app.command("revoke-desktop")
    def revoke_desktop(login: str, desktop: str) -> None:
        """Sign LOGIN's DESKTOP out: its broker user is deleted and its connections closed
        (the client says so and stops). LOGIN's other desktops keep working."""
        reply = call(RevokeDesktop(login=login, desktop=desktop))
        typer.echo(f"signed out {login}'s desktop {desktop.lower()}")
        show_desktops(reply, False)


def show_desktops(reply: DesktopList, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(reply.model_dump_json() + "\n")
        return
    if not reply.desktops:
        typer.echo(f"{reply.login} has no desktop signed in with the directory password")
        return
    for d in reply.desktops:
        typer.echo(
            f"{d.desktop:<24} {d.username:<32} signed in {d.signed_in_at:%Y-%m-%d %H:%M:%S %Z}"
            f" from {d.source or '?'}"
        )
