"""platenctl commands for periodic quotas: `quota list|set|remove|run`."""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated

import typer
from pydantic import ValidationError

from platen.ctl.common import amount, call, fail
from platen.events.quotas import (
    ListQuotas,
    QuotaList,
    QuotaSaved,
    QuotasRun,
    QuotaView,
    RemoveQuota,
    RunQuotas,
    SetQuota,
)

quota_app = typer.Typer(
    help="Periodic quotas: an amount each member of a group is given every day, week, "
    "month or term.",
    no_args_is_help=True,
)
Json = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def quota_line(q: QuotaView) -> str:
    how = "reset to" if q.reset else "add"
    line = f"{q.group:<20} {how} {q.amount} every {q.period}"
    if q.cap is not None:
        line += f", up to {q.cap}"
    if q.terms:
        line += f" (terms from {', '.join(t.isoformat() for t in q.terms)})"
    given = f"last given: {q.last_period}" if q.last_period else "not given yet"
    return f"{line}; {given}"


def _print_quotas(listed: QuotaList, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps([json.loads(q.model_dump_json()) for q in listed.quotas]))
        return
    for q in listed.quotas:
        typer.echo(quota_line(q))
    if not listed.quotas:
        typer.echo("no quotas")


@quota_app.command("list")
def quota_list(as_json: Json = False) -> None:
    """Every group's quota, and the last period given."""
    _print_quotas(call(ListQuotas()), as_json)


@quota_app.command("set")
def quota_set(
    group: str,
    amount_: Annotated[str, typer.Argument(metavar="AMOUNT", help="Given each period.")],
    period: Annotated[str, typer.Option(help="day, week, month or term.")] = "month",
    cap: Annotated[
        str | None, typer.Option(help="Add no more than brings a balance to this.")
    ] = None,
    reset: Annotated[
        bool, typer.Option("--reset", help="Set the balance to AMOUNT instead of adding.")
    ] = False,
    term: Annotated[
        list[str] | None, typer.Option(help="A term's first day (YYYY-MM-DD); repeat.")
    ] = None,
    as_json: Json = False,
) -> None:
    """Give each enabled member of GROUP an AMOUNT every period (replaces its quota)."""
    try:
        terms = [date.fromisoformat(t) for t in term or []]
        cmd = SetQuota(
            group=group,
            amount=amount(amount_),
            period=period,
            cap=amount(cap) if cap is not None else None,
            reset=reset,
            terms=terms,
        )
    except (ValueError, ValidationError) as exc:
        raise fail(f"quota not set: {_first_error(exc)}") from None
    saved: QuotaSaved = call(cmd)
    typer.echo(saved.quota.model_dump_json() if as_json else quota_line(saved.quota))


@quota_app.command("remove")
def quota_remove(group: str) -> None:
    """Give GROUP nothing more (what was given stays)."""
    call(RemoveQuota(group=group))
    typer.echo(f"{group}: quota removed")


@quota_app.command("run")
def quota_run(
    group: Annotated[str | None, typer.Option(help="Only this group's quota.")] = None,
    day: Annotated[
        str | None, typer.Option(help="Give the period of this day (YYYY-MM-DD); today.")
    ] = None,
    as_json: Json = False,
) -> None:
    """Give each quota's current period now, unless given already (the ledger also does
    this by itself)."""
    try:
        when = date.fromisoformat(day) if day else None
    except ValueError as exc:
        raise fail(f"{day!r} is not a date: {exc}") from None
    ran: QuotasRun = call(RunQuotas(group=group, day=when))
    if as_json:
        typer.echo(json.dumps([json.loads(r.model_dump_json()) for r in ran.runs]))
        return
    for r in ran.runs:
        if r.given:
            typer.echo(f"{r.group:<20} {r.period}: {r.total} given to {r.users} users")
        else:
            typer.echo(f"{r.group:<20} {r.period}: given already")
    if not ran.runs:
        typer.echo("no quota has a period now")


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        return f"{where}: {err['msg']}" if where else err["msg"]
    return str(exc)


def register(app: typer.Typer) -> None:
    app.add_typer(quota_app, name="quota")
