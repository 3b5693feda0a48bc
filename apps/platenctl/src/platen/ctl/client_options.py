"""`platenctl client set|unset|show`: the desktop client's options, site-wide or per group.

A value is checked here with the same rules the notification service applies again
(`platen.events.client_options`), so a typo is told at once; a logo is given as `@FILE`
(a PNG or GIF), which is sent base64-encoded.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Annotated

import typer

from platen.ctl.common import call, fail
from platen.events.client_options import (
    LOGO_MAX_BYTES,
    OPTION_HELP,
    BadOption,
    ClientOptionsChanged,
    ClientOptionsView,
    SetClientOption,
    ShowClientOptions,
    UnsetClientOption,
    normal_value,
)

client_app = typer.Typer(
    help="Options of the desktop client, for the site or a group (sent to running clients).",
    no_args_is_help=True,
)

GroupOption = Annotated[
    str | None, typer.Option("--group", help="Only for this group's members (default: the site).")
]


def value_of(key: str, text: str) -> str:
    """The value to send: a logo's `@FILE` read and encoded; every value checked."""
    if key == "logo" and text.startswith("@"):
        path = Path(text[1:])
        try:
            with path.open("rb") as f:
                data = f.read(LOGO_MAX_BYTES + 1)
        except OSError as exc:
            raise BadOption(f"cannot read {path}: {exc.strerror or exc}") from None
        text = base64.b64encode(data).decode()
    return normal_value(key, text)


def _sent(reply: ClientOptionsChanged) -> None:
    s = "" if reply.desktops == 1 else "s"
    typer.echo(f"sent to {reply.desktops} desktop{s}")


def _shown(value: str, key: str) -> str:
    return f"<{len(base64.b64decode(value))} bytes>" if key == "logo" else value


SET_HELP = "Set option KEY to VALUE.\n\n" + "\n\n".join(
    f"{key}: {text}" for key, text in OPTION_HELP.items()
)


@client_app.command("set", help=SET_HELP)
def set_option(key: str, value: str, group: GroupOption = None) -> None:
    try:
        value = value_of(key, value)
        cmd = SetClientOption(key=key, value=value, group=group)
    except BadOption as exc:
        raise fail(str(exc)) from None
    except ValueError:  # pydantic refused the group's name (the rest is checked above)
        raise fail(f"{group!r} is not a valid group name") from None
    _sent(call(cmd))


@client_app.command("unset")
def unset_option(key: str, group: GroupOption = None) -> None:
    """Remove option KEY (the site's value, or the client's own default, applies again)."""
    if key not in OPTION_HELP:
        raise fail(f"unknown client option {key!r} (known: {', '.join(OPTION_HELP)})")
    _sent(call(UnsetClientOption(key=key, group=group)))


@client_app.command("show")
def show(
    user: Annotated[
        str | None, typer.Option(help="Also what this user's desktop is given.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="As one JSON object.")] = False,
) -> None:
    """The options of the site and of each group (and what USER's desktop is given)."""
    try:
        query = ShowClientOptions(user=user)
    except ValueError:
        raise fail(f"{user!r} is not a valid login") from None
    view: ClientOptionsView = call(query)
    if as_json:
        typer.echo(json.dumps(view.model_dump(mode="json"), indent=2))
        return
    scopes = {"site": view.site, **{f"group {g}": o for g, o in sorted(view.groups.items())}}
    if view.effective is not None:
        groups = ", ".join(view.user_groups) or "no groups"
        scopes[f"user {view.user} ({groups})"] = view.effective
    for scope, options in scopes.items():
        typer.echo(f"{scope}:")
        if not options:
            typer.echo("  (none)")
        for key, value in sorted(options.items()):
            typer.echo(f"  {key} = {_shown(value, key)}")
