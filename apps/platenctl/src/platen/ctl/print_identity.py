"""platenctl commands for identity at print: how each queue proves whose a job is."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from platen import rpc
from platen.ctl.common import call, fail
from platen.events.discovery import amqp_url
from platen.events.print_identity import (
    GetPrinterIdentity,
    IdentityMode,
    ListPrinterIdentities,
    PrinterIdentities,
    PrinterIdentity,
    SetPrinterIdentity,
)

MEANING = {
    "authenticated": "CUPS makes users sign in; the signed-in user pays",
    "desktop": "the named user's own desktop must be at the job's host, or they are asked",
    "trusted": "TRUSTED: the name CUPS gives is charged as given, unproven",
}


def describe(view: PrinterIdentity) -> str:
    default = "" if view.explicit else " (the default)"
    return f"identity at print: {view.mode}{default} - {MEANING[view.mode]}"


async def trusted_queues(client: rpc.Client) -> list[str]:
    reply: PrinterIdentities = await client.request(
        ListPrinterIdentities.message_type, ListPrinterIdentities(mode="trusted"), 10
    )
    return [p.printer for p in reply.printers]


def status_lines() -> list[str]:
    """For `platenctl status`: every queue that takes CUPS's name as given."""

    async def ask() -> list[str]:
        async with rpc.connect(amqp_url()) as client:
            return await trusted_queues(client)

    try:
        names = asyncio.run(ask())
    except rpc.RequestFailed as exc:
        return [f"trusted queues: unknown ({exc})"]
    if not names:
        return ["trusted queues: none (every queue proves whose its jobs are)"]
    return [f"TRUSTED queues (the CUPS user name is charged unproven): {', '.join(names)}"]


def register(printer_app: typer.Typer) -> None:
    @printer_app.command("identity")
    def printer_identity(
        name: str,
        mode: Annotated[
            str | None,
            typer.Argument(help="authenticated, desktop or trusted (none: show the mode)."),
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """Set (or show) how jobs on queue NAME prove whose they are."""
        if mode is None:
            view: PrinterIdentity = call(GetPrinterIdentity(printer=name))
        else:
            if mode not in MEANING:
                raise fail(f"mode must be authenticated, desktop or trusted, not {mode!r}")
            chosen: IdentityMode = mode  # type: ignore[assignment]
            view = call(SetPrinterIdentity(printer=name, mode=chosen))
        if as_json:
            typer.echo(view.model_dump_json())
            return
        typer.echo(f"{view.printer}: {describe(view)}")
