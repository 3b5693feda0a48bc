"""`platenctl dlq`: the messages services could not handle, and handling them again.

A message is dead-lettered when it can never succeed as it is (it breaks the contract, or
a handler refused it) or kept failing. Once the cause is fixed, `replay` puts it back on
the queue it came from, and the service handles it as if it had just arrived.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from platen.ctl.common import call, fail
from platen.events.system import (
    DeadLettersListed,
    DeadLettersReplayed,
    ListDeadLetters,
    ReplayDeadLetters,
)
from platen.messaging.discovery import command_prefixes

dlq_app = typer.Typer(help="Messages the services could not handle.", no_args_is_help=True)


def _service(name: str) -> str:
    if name not in command_prefixes():
        raise fail(f"unknown service {name!r}; one of: {', '.join(command_prefixes())}")
    return name


def letter_lines(service: str, listed: DeadLettersListed) -> list[str]:
    lines = [
        f"{service:<16} {d.queue:<24} {d.message_id}  {d.message_type}"
        f"  {d.correlation_id or '-'}  {d.reason}"
        for d in listed.letters
    ]
    if listed.more:
        lines.append(f"{service:<16} ... more than {len(listed.letters)}")
    return lines


@dlq_app.command("list")
def dlq_list(
    service: Annotated[
        list[str], typer.Option(help="Only this service (repeatable); default all four.")
    ] = [],  # noqa: B006
    limit: Annotated[int, typer.Option(help="At most this many per service.")] = 100,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List dead-lettered messages: service, queue, message id, type, job, reason."""
    names = [_service(s) for s in service] or list(command_prefixes())
    found = {
        name: call(ListDeadLetters(limit=limit), f"{command_prefixes()[name]}.dead_letters.list")
        for name in names
    }
    if as_json:
        out = {name: [d.model_dump() for d in listed.letters] for name, listed in found.items()}
        typer.echo(json.dumps(out, indent=2))
        return
    lines = [line for name, listed in found.items() for line in letter_lines(name, listed)]
    typer.echo("\n".join(lines) if lines else "no dead letters")


@dlq_app.command("replay")
def dlq_replay(
    service: str,
    message_id: Annotated[list[str], typer.Argument(help="The messages to replay.")] = [],  # noqa: B006
    all_: Annotated[bool, typer.Option("--all", help="Replay every one of them.")] = False,
) -> None:
    """Put a service's dead-lettered messages back on their queues, to be handled again."""
    _service(service)
    if bool(message_id) == all_:
        raise fail("name the messages to replay, or say --all")
    replayed: DeadLettersReplayed = call(
        ReplayDeadLetters(message_ids=message_id),
        f"{command_prefixes()[service]}.dead_letters.replay",
    )
    typer.echo(f"replayed {len(replayed.replayed)}")
    for mid in replayed.replayed:
        typer.echo(f"  {mid}")
    missing = set(message_id) - set(replayed.replayed)
    if missing:
        raise fail(f"not found in {service}'s dead letters: {', '.join(sorted(missing))}")
