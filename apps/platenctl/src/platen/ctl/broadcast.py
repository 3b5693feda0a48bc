"""`platenctl broadcast`: a message from the administrator to users' desktops."""

from __future__ import annotations

from typing import Annotated

import typer
from pydantic import ValidationError

from platen.ctl.common import call, fail
from platen.events.desktop import Broadcast, BroadcastSent


def register(app: typer.Typer) -> None:
    @app.command("broadcast")
    def broadcast(
        text: str,
        user: Annotated[
            list[str], typer.Option(help="Only this user's desktop (repeatable); default all.")
        ] = [],  # noqa: B006
        sender: Annotated[str, typer.Option(help="Who the message is from.")] = "administrator",
        expires: Annotated[
            int | None,
            typer.Option(help="Minutes after which a desktop that has not shown it yet drops it."),
        ] = None,
    ) -> None:
        """Show a message on users' desktops (every desktop Platen knows, by default)."""
        try:
            cmd = Broadcast(text=text, users=user, sender=sender, expires_in_minutes=expires)
        except ValidationError as exc:
            raise fail(exc.errors()[0]["msg"]) from None
        sent: BroadcastSent = call(cmd)
        typer.echo(f"sent to {sent.desktops} desktop{'s' if sent.desktops != 1 else ''}")
