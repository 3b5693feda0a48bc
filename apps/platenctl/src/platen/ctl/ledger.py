"""platenctl commands for the ledger: user settings, shared accounts, money, statements."""

from __future__ import annotations

import csv
import json
import re
import sys
import uuid
from datetime import datetime
from typing import Annotated, Literal

import typer
from pydantic import ValidationError

from platen.ctl.common import amount, call, cut_short, fail, print_user, user_flags
from platen.events.accounts import (
    CODE_PATTERN,
    AccountList,
    AccountView,
    AddAccount,
    Adjust,
    GrantAccess,
    LedgerReport,
    ListAccounts,
    ListUsers,
    Refund,
    RevokeAccess,
    SetAccount,
    SetUser,
    Statement,
    StatementView,
    TopUp,
    TransactionView,
    Transfer,
    UserList,
    VerifyLedger,
)

account_app = typer.Typer(help="Shared accounts.", no_args_is_help=True)
ledger_app = typer.Typer(help="The ledger itself.", no_args_is_help=True)

Json = Annotated[bool, typer.Option("--json", help="Print JSON.")]
Key = Annotated[
    str | None,
    typer.Option(help="Idempotency key: the same key twice is one operation (default: new)."),
]


def _valid_code(code: str | None) -> None:
    if code is not None and not re.fullmatch(CODE_PATTERN, code):
        raise fail(
            f"code {code!r}: 1 to 32 letters, digits, '.', '_' or '-', starting with a "
            "letter or digit"
        )


def _print_account(view: AccountView, as_json: bool) -> None:
    if as_json:
        typer.echo(view.model_dump_json())
        return
    flags = [view.kind, "restricted" if view.restricted else "unrestricted"]
    if not view.enabled:
        flags.append("DISABLED")
    if view.has_pin:
        flags.append("PIN")
    if view.effective_charge_rate != 1:
        flags.append(f"charge rate {view.effective_charge_rate:%}")
    if view.code:
        flags.append(f"code {view.code}")
    if view.balance_visible:
        flags.append("balance shown to its users")
    typer.echo(
        f"{view.id} ({', '.join(flags)}): balance {view.balance}, held {view.held}, "
        f"available {view.available}"
    )
    if view.users or view.groups:
        typer.echo(
            f"  users: {', '.join(view.users) or '-'}; groups: {', '.join(view.groups) or '-'}"
        )


def _print_transaction(tx: TransactionView, as_json: bool) -> None:
    if as_json:
        typer.echo(tx.model_dump_json())
        return
    parts = ", ".join(f"{e.account} {e.amount:+} -> {e.balance_after}" for e in tx.entries)
    typer.echo(f"transaction {tx.id} ({tx.kind}: {tx.description}): {parts}")


def register(app: typer.Typer, user_app: typer.Typer) -> None:
    app.add_typer(account_app, name="account")
    app.add_typer(ledger_app, name="ledger")

    @user_app.command("set")
    def user_set(
        login: str,
        restricted: Annotated[bool | None, typer.Option("--restricted/--unrestricted")] = None,
        overdraft: Annotated[str | None, typer.Option(help="How far below zero.")] = None,
        selection: Annotated[
            Literal["auto", "confirm", "choose"] | None,
            typer.Option(help="auto: no popup; confirm each job; choose the account."),
        ] = None,
        default_account: Annotated[str | None, typer.Option(help="Account charged.")] = None,
        low_balance: Annotated[str | None, typer.Option(help="Warn below this.")] = None,
        groups: Annotated[str | None, typer.Option(help="Comma-separated; replaces.")] = None,
        enabled: Annotated[
            bool | None,
            typer.Option("--enabled/--disabled", help="A disabled user prints nothing."),
        ] = None,
        email: Annotated[
            str | None, typer.Option(help='Where notices are mailed ("" forgets it).')
        ] = None,
        email_notices: Annotated[
            Literal["on", "off"] | None,
            typer.Option(help="Low-balance and denial notices by email too (the site's too)."),
        ] = None,
        as_json: Json = False,
    ) -> None:
        """Change a user's settings."""
        try:
            cmd = SetUser(
                login=login,
                restricted=restricted,
                overdraft_limit=amount(overdraft) if overdraft is not None else None,
                account_selection=selection,
                default_account=default_account,
                low_balance_threshold=amount(low_balance) if low_balance is not None else None,
                groups=[g for g in groups.split(",") if g] if groups is not None else None,
                enabled=enabled,
                email=email,
                email_notices=None if email_notices is None else email_notices == "on",
            )
        except ValidationError as exc:
            error = exc.errors()[0]
            raise fail(f"{error['loc'][0]}: {error['msg']}") from None
        print_user(call(cmd), as_json)

    @user_app.command("disable")
    def user_disable(login: str, as_json: Json = False) -> None:
        """Disable a user: their jobs are denied and their desktop signed out (`user set
        --disabled`); their accounts and history stay."""
        print_user(call(SetUser(login=login, enabled=False)), as_json)

    @user_app.command("enable")
    def user_enable(login: str, as_json: Json = False) -> None:
        """Let a disabled user print again (`user set --enabled`)."""
        print_user(call(SetUser(login=login, enabled=True)), as_json)

    @user_app.command("list")
    def user_list(
        group: Annotated[str | None, typer.Option(help="Only the members of this group.")] = None,
        limit: Annotated[
            int, typer.Option(min=1, max=100_000, help="At most this many users.")
        ] = 1000,
        as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV.")] = False,
        as_json: Json = False,
    ) -> None:
        """List users by login: balance, held, available, restricted, groups, disabled."""
        result: UserList = call(ListUsers(group=group, limit=limit))
        if result.truncated:
            cut_short("user list", f"{len(result.users)} users", "--limit or --group for the rest")
        if as_json:
            typer.echo(json.dumps([json.loads(u.model_dump_json()) for u in result.users]))
            return
        columns = [
            "login",
            "balance",
            "held",
            "available",
            "restricted",
            "overdraft",
            "groups",
            "enabled",
        ]
        if as_csv:
            out = csv.writer(sys.stdout)
            out.writerow(columns)
            for u in result.users:
                out.writerow(
                    [
                        u.login,
                        u.balance,
                        u.held,
                        u.available,
                        str(u.restricted).lower(),
                        u.overdraft_limit,
                        " ".join(u.groups),
                        str(u.enabled).lower(),
                    ]
                )
            return
        for u in result.users:
            typer.echo(
                f"{u.login:<20} {u.balance:>10} held {u.held:>8} available {u.available:>10}"
                f"  {user_flags(u.restricted, u.enabled)}  {','.join(u.groups) or '-'}"
            )

    @account_app.command("add")
    def account_add(
        name: str,
        parent: Annotated[str | None, typer.Option(help="The parent account.")] = None,
        pin: Annotated[str | None, typer.Option(help="A PIN users may charge it with.")] = None,
        charge_rate: Annotated[str | None, typer.Option(help="e.g. 1.5 for 150 %.")] = None,
        restricted: Annotated[bool, typer.Option(help="May not go below zero.")] = False,
        overdraft: Annotated[str, typer.Option()] = "0",
        disabled: Annotated[bool, typer.Option(help="Create it disabled.")] = False,
        code: Annotated[str | None, typer.Option(help="A code users may search by.")] = None,
        show_balance: Annotated[
            bool, typer.Option(help="Its users see its balance in their account popup.")
        ] = False,
        as_json: Json = False,
    ) -> None:
        """Create a shared account."""
        _valid_code(code)
        cmd = AddAccount(
            name=name,
            parent=parent,
            pin=pin,
            charge_rate=amount(charge_rate) if charge_rate else None,
            restricted=restricted,
            overdraft_limit=amount(overdraft),
            enabled=not disabled,
            code=code,
            balance_visible=show_balance,
        )
        _print_account(call(cmd), as_json)

    @account_app.command("set")
    def account_set(
        account: str,
        pin: Annotated[str | None, typer.Option()] = None,
        clear_pin: Annotated[bool, typer.Option()] = False,
        charge_rate: Annotated[str | None, typer.Option()] = None,
        restricted: Annotated[bool | None, typer.Option("--restricted/--unrestricted")] = None,
        overdraft: Annotated[str | None, typer.Option()] = None,
        enabled: Annotated[bool | None, typer.Option("--enabled/--disabled")] = None,
        code: Annotated[str | None, typer.Option(help="A code users may search by.")] = None,
        clear_code: Annotated[bool, typer.Option()] = False,
        show_balance: Annotated[
            bool | None,
            typer.Option(
                "--show-balance/--hide-balance",
                help="Whether its users see its balance in their account popup.",
            ),
        ] = None,
        as_json: Json = False,
    ) -> None:
        """Change a shared account."""
        _valid_code(code)
        cmd = SetAccount(
            account=account,
            pin=pin,
            clear_pin=clear_pin,
            charge_rate=amount(charge_rate) if charge_rate else None,
            restricted=restricted,
            overdraft_limit=amount(overdraft) if overdraft else None,
            enabled=enabled,
            code=code,
            clear_code=clear_code,
            balance_visible=show_balance,
        )
        _print_account(call(cmd), as_json)

    @account_app.command("grant")
    def account_grant(
        account: str,
        user: Annotated[list[str], typer.Option(help="Repeatable.")] = [],  # noqa: B006
        group: Annotated[list[str], typer.Option(help="Repeatable.")] = [],  # noqa: B006
    ) -> None:
        """Let users or groups charge a shared account (and its children)."""
        _print_account(call(GrantAccess(account=account, users=user, groups=group)), False)

    @account_app.command("revoke")
    def account_revoke(
        account: str,
        user: Annotated[list[str], typer.Option(help="Repeatable.")] = [],  # noqa: B006
        group: Annotated[list[str], typer.Option(help="Repeatable.")] = [],  # noqa: B006
    ) -> None:
        """Take away users' or groups' access to a shared account."""
        _print_account(call(RevokeAccess(account=account, users=user, groups=group)), False)

    @account_app.command("show")
    def account_show(account: str, as_json: Json = False) -> None:
        """Show an account: a login, a shared account's path, or an id."""
        from platen.events.accounts import ShowAccount

        _print_account(call(ShowAccount(account=account)), as_json)

    @account_app.command("list")
    def account_list(
        kind: Annotated[Literal["personal", "shared", "system"] | None, typer.Option()] = None,
        as_json: Json = False,
    ) -> None:
        """List accounts."""
        result: AccountList = call(ListAccounts(kind=kind))
        if as_json:
            typer.echo(json.dumps([json.loads(a.model_dump_json()) for a in result.accounts]))
            return
        for view in result.accounts:
            _print_account(view, False)

    @app.command()
    def topup(
        account: str,
        value: Annotated[str, typer.Argument(metavar="AMOUNT")],
        reason: Annotated[str, typer.Option()] = "top-up",
        key: Key = None,
        as_json: Json = False,
    ) -> None:
        """Add money to an account (a login or a shared account)."""
        cmd = TopUp(
            key=key or str(uuid.uuid4()), account=account, amount=amount(value), reason=reason
        )
        _print_transaction(call(cmd), as_json)

    # "-1.25" would otherwise be read as an unknown option.
    @app.command(context_settings={"ignore_unknown_options": True})
    def adjust(
        account: str,
        change: Annotated[str, typer.Argument(help="Signed: -1.50 takes money away.")],
        reason: Annotated[str, typer.Option(help="Why (required).")],
        key: Key = None,
        as_json: Json = False,
    ) -> None:
        """Correct an account's balance, with a reason."""
        cmd = Adjust(
            key=key or str(uuid.uuid4()),
            account=account,
            amount=amount(change, signed=True),
            reason=reason,
        )
        _print_transaction(call(cmd), as_json)

    @app.command()
    def refund(
        job_id: uuid.UUID,
        reason: Annotated[str, typer.Option(help="Why (required).")],
        part: Annotated[
            str | None, typer.Option("--amount", help="Part of it (default: all).")
        ] = None,
        key: Key = None,
        as_json: Json = False,
    ) -> None:
        """Refund a printed job to the account that paid for it."""
        cmd = Refund(
            key=key or str(uuid.uuid4()),
            job_id=job_id,
            reason=reason,
            amount=amount(part) if part else None,
        )
        _print_transaction(call(cmd), as_json)

    @app.command()
    def transfer(
        source: str,
        target: str,
        value: Annotated[str, typer.Argument(metavar="AMOUNT")],
        reason: Annotated[str, typer.Option()] = "transfer",
        key: Key = None,
        as_json: Json = False,
    ) -> None:
        """Move money from one account to another."""
        cmd = Transfer(
            key=key or str(uuid.uuid4()),
            from_account=source,
            to_account=target,
            amount=amount(value),
            reason=reason,
        )
        _print_transaction(call(cmd), as_json)

    @app.command()
    def statement(
        account: str,
        since: Annotated[datetime | None, typer.Option(help="e.g. 2026-11-01")] = None,
        as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV.")] = False,
        limit: Annotated[
            int, typer.Option(min=1, max=100_000, help="At most this many lines.")
        ] = 1000,
        as_json: Json = False,
    ) -> None:
        """An account's transactions with the balance after each."""
        view: StatementView = call(Statement(account=account, since=since, limit=limit))
        if view.truncated:
            cut_short("statement", f"{len(view.lines)} lines", "--since or --limit for the rest")
        if as_json:
            typer.echo(view.model_dump_json())
            return
        if as_csv:
            out = csv.writer(sys.stdout)
            out.writerow(["time", "transaction", "kind", "description", "job", "amount", "balance"])
            for line in view.lines:
                out.writerow(
                    [
                        line.at.isoformat(),
                        line.transaction_id,
                        line.kind,
                        line.description,
                        line.job_id or "",
                        line.amount,
                        line.balance_after,
                    ]
                )
            return
        typer.echo(f"{view.account}: opening {view.opening_balance}")
        for line in view.lines:
            typer.echo(
                f"{line.at:%Y-%m-%d %H:%M:%S}  {line.kind:<10} {line.amount:>10} "
                f"{line.balance_after:>10}  {line.description}"
            )
        if view.truncated:
            typer.echo(f"... more lines not shown (first {len(view.lines)} only)")
        typer.echo(f"closing {view.closing_balance}")

    @ledger_app.command("verify")
    def ledger_verify(as_json: Json = False) -> None:
        """Check the ledger's invariants; exit 1 if any is broken."""
        report: LedgerReport = call(VerifyLedger(), timeout=120)
        if as_json:
            typer.echo(report.model_dump_json())
        else:
            typer.echo(
                f"{report.transactions} transactions, {report.accounts} accounts, "
                f"{report.pending_holds} pending holds"
            )
            for problem in report.problems:
                typer.echo(f"PROBLEM: {problem}")
            typer.echo("ledger OK" if not report.problems else "ledger has problems")
        if report.problems:
            raise typer.Exit(1)
