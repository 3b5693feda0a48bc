"""Helpers shared by platenctl's commands: amounts, errors, one request and its reply."""

from __future__ import annotations

import asyncio
from decimal import Decimal, InvalidOperation

import typer

from platen import rpc
from platen.events.accounts import UserView
from platen.events.discovery import amqp_url


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code)


def run(coro):
    try:
        return asyncio.run(coro)
    except rpc.RequestFailed as exc:
        raise fail(str(exc)) from None


def call(message, routing_key: str | None = None, timeout: float = 15.0):
    """Send one command or query to its service and return the reply (exit 1 on error)."""

    async def go():
        async with rpc.connect(amqp_url()) as client:
            return await client.request(routing_key or message.message_type, message, timeout)

    return run(go())


def amount(text: str, *, signed: bool = False) -> Decimal:
    """`text` as money; refused unless zero or more (any sign when `signed`)."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise fail(f"{text!r} is not an amount") from None
    if not value.is_finite() or (value < 0 and not signed):
        raise fail(f"{text!r} is not an amount of zero or more")
    return value


def user_flags(restricted: bool, enabled: bool) -> str:
    return ("restricted" if restricted else "unrestricted") + ("" if enabled else ", disabled")


def cut_short(what: str, shown: str, hint: str) -> None:
    """Say on stderr that a list was cut at its limit, so that CSV and JSON stay whole."""
    typer.echo(f"{what} cut short: only the first {shown} are shown; use {hint}", err=True)


def print_user(view: UserView, as_json: bool) -> None:
    if as_json:
        typer.echo(view.model_dump_json())
        return
    kind = user_flags(view.restricted, view.enabled)
    typer.echo(
        f"{view.login} ({kind}): balance {view.balance}, held {view.held}, "
        f"available {view.available}"
    )
    details = [f"account selection {view.account_selection}"]
    if view.default_account:
        details.append(f"charges {view.default_account}")
    if view.overdraft_limit:
        details.append(f"overdraft {view.overdraft_limit}")
    if view.groups:
        details.append("groups " + ", ".join(view.groups))
    if view.low_balance_threshold is not None:
        details.append(f"low-balance warning below {view.low_balance_threshold}")
    if view.email:
        notices = "notices by email" if view.email_notices else "no notices by email"
        details.append(f"email {view.email} ({notices})")
    elif view.email_notices:
        details.append("notices by email, but no address")
    typer.echo("  " + "; ".join(details))
    for hold in view.holds:
        typer.echo(
            f"  held {hold.amount} for job {hold.job_id} ({hold.document_name} on {hold.printer})"
        )
