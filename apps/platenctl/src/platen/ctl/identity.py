"""`platenctl user credential`: let a user's desktop client sign in to the broker."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from platen.ctl.common import call
from platen.events.discovery import amqp_url, with_login
from platen.events.identities import Credential, IssueCredential


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
