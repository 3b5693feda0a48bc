"""`platenctl notice template`: the wording of low-balance and denial notices, on the
desktop and by email."""

from __future__ import annotations

import json
from typing import Annotated, Literal

import typer
from pydantic import ValidationError

from platen.ctl.common import call, fail
from platen.events.notices import NoticeTemplates, SetNoticeTemplate, ShowNoticeTemplates

notice_app = typer.Typer(help="Notices users get (desktop and email).", no_args_is_help=True)
template_app = typer.Typer(help="The wording of each notice.", no_args_is_help=True)
notice_app.add_typer(template_app, name="template")

Name = Annotated[Literal["low-balance", "denied"], typer.Argument(help="Which notice.")]


def _print(templates: NoticeTemplates, only: str | None, as_json: bool) -> None:
    shown = [t for t in templates.templates if only is None or t.name == only]
    if as_json:
        typer.echo(json.dumps([json.loads(t.model_dump_json()) for t in shown]))
        return
    for t in shown:
        origin = "set by an administrator" if t.custom else "built in"
        typer.echo(f"{t.name} ({origin})")
        typer.echo(f"  subject: {t.subject}")
        typer.echo("  body:    " + t.body.replace("\n", "\n           "))
        typer.echo("  placeholders: " + " ".join("{" + p + "}" for p in t.placeholders))


@template_app.command("show")
def template_show(
    name: Annotated[
        Literal["low-balance", "denied"] | None, typer.Argument(help="One notice; default all.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show each notice's subject and body, and the placeholders it may use."""
    _print(call(ShowNoticeTemplates()), name, as_json)


@template_app.command("set")
def template_set(
    name: Name,
    subject: Annotated[str | None, typer.Option(help="The mail's subject (one line).")] = None,
    body: Annotated[
        str | None, typer.Option(help="The mail's body, also the desktop's text.")
    ] = None,
    reset: Annotated[bool, typer.Option("--reset", help="Back to the built-in text.")] = False,
) -> None:
    """Set a notice's wording, with placeholders in braces: {balance}, {available},
    {threshold} (low-balance); {document}, {printer}, {reason} (denied); {login} (both).
    An unknown placeholder is refused."""
    if reset == (subject is not None or body is not None):
        raise fail("give --subject and/or --body, or --reset")
    try:
        cmd = SetNoticeTemplate(name=name, subject=subject, body=body, reset=reset)
    except ValidationError as exc:
        error = exc.errors()[0]
        raise fail(f"--{error['loc'][0]}: {error['msg']}") from None
    _print(call(cmd), name, False)
