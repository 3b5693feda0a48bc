"""platenctl commands for the site's directory: `directory sync`, `rule list|set|remove`."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from pydantic import ValidationError

from platen.ctl.common import amount, call, fail
from platen.events.directory import (
    DirectorySynced,
    ListNewUserRules,
    NewUserRules,
    RemoveNewUserRule,
    SetNewUserRule,
    SyncDirectory,
)

directory_app = typer.Typer(help="Users from the site's directory.", no_args_is_help=True)
rule_app = typer.Typer(
    help="New-user rules: what a user the directory knows gets when Platen first meets them.",
    no_args_is_help=True,
)
Json = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@directory_app.command("sync")
def directory_sync(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would change; change nothing.")
    ] = False,
    as_json: Json = False,
) -> None:
    """Add the directory's users a rule takes, update groups and names, disable the users
    the directory no longer lists (never deleted: their history stays)."""
    synced: DirectorySynced = call(SyncDirectory(dry_run=dry_run), timeout=120)
    if as_json:
        typer.echo(synced.model_dump_json())
        return
    would = "would be " if synced.dry_run else ""
    typer.echo(f"{synced.source}: {synced.listed} users listed")
    for a in synced.added:
        typer.echo(f"  {would}added     {a.login} ({a.detail})")
    for c in synced.changed:
        typer.echo(f"  {would}changed   {c.login} ({c.detail})")
    for login in synced.disabled:
        typer.echo(f"  {would}disabled  {login} (no longer in the directory)")
    if synced.no_rule:
        typer.echo(
            f"  not added: {len(synced.no_rule)} users no new-user rule takes "
            f"({', '.join(synced.no_rule[:10])}{', …' if len(synced.no_rule) > 10 else ''}); "
            "`platenctl rule set GROUP` or `rule set '*'`"
        )


def _print_rules(rules: NewUserRules, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps([json.loads(r.model_dump_json()) for r in rules.rules]))
        return
    for r in rules.rules:
        who = "anyone in the directory" if r.match == "*" else f"group {r.match}"
        kind = "restricted" if r.restricted else "unrestricted"
        typer.echo(
            f"{r.position:>3}  {who:<30} balance {r.initial_balance}, {kind}, "
            f"overdraft {r.overdraft_limit}"
        )
    if not rules.rules:
        typer.echo("no new-user rules: users the directory knows are not made until one is set")


@rule_app.command("list")
def rule_list(as_json: Json = False) -> None:
    """The rules, in the order they are tried."""
    _print_rules(call(ListNewUserRules()), as_json)


@rule_app.command("set")
def rule_set(
    match: Annotated[str, typer.Argument(metavar="GROUP", help="A group, or '*' for anyone.")],
    balance: Annotated[str, typer.Option(help="Starting balance.")] = "0",
    unrestricted: Annotated[
        bool, typer.Option("--unrestricted", help="May go below zero (no floor).")
    ] = False,
    overdraft: Annotated[
        str, typer.Option(help="How far below zero a restricted user may go.")
    ] = "0",
    position: Annotated[
        int | None, typer.Option(min=0, help="Tried in this order (lowest first); default last.")
    ] = None,
    as_json: Json = False,
) -> None:
    """What a user in GROUP gets when Platen first meets them (replaces GROUP's rule)."""
    try:
        cmd = SetNewUserRule(
            match=match,
            position=position,
            initial_balance=amount(balance),
            restricted=not unrestricted,
            overdraft_limit=amount(overdraft),
        )
    except ValidationError:
        raise fail(f"{match!r} is not a group name (letters, digits, _ . @ -) nor '*'") from None
    _print_rules(call(cmd), as_json)


@rule_app.command("remove")
def rule_remove(match: Annotated[str, typer.Argument(metavar="GROUP")]) -> None:
    _print_rules(call(RemoveNewUserRule(match=match)), False)


def register(app: typer.Typer) -> None:
    app.add_typer(directory_app, name="directory")
    app.add_typer(rule_app, name="rule")
