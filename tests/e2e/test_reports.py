"""Reports, a shared account's invoice and deleting a user, on the whole system: the
figures platenctl prints are the ledger's own, to the cent; a desktop or a print server
gets no report; a user is deleted only once nothing is left on their account."""

from __future__ import annotations

import csv
import io
import tomllib
from datetime import date
from decimal import Decimal as D

import aio_pika
import pytest
from aiormq.exceptions import ChannelAccessRefused

from platen.broker_setup.installation import with_credentials
from platen.events.discovery import signed_in_as
from platen.events.reports import UsageReportQuery
from platen.testing.documents import make_pdf
from tests.e2e.helpers import command, eventually, ledger_problems, query


def print_job(system, user: str, printer: str, pages: int) -> str:
    path = system.tmp / f"{user}-{printer}-{pages}.pdf"
    path.write_bytes(make_pdf(pages))
    out = system.ctl("print", str(path), "--user", user, "--printer", printer, "--wait")
    job_id, outcome = out.stdout.split("\n", 1)
    assert outcome.startswith("printed:"), out.stdout
    return job_id


async def ledger_sums(system, column: str) -> dict[str, D]:
    """What charges and refunds moved into revenue, by a column of the job's hold: read
    from the ledger's tables, not through the report's query."""
    rows = await query(
        system.database_url,
        f"""SELECT h.{column} AS key, sum(e.amount) AS amount
              FROM ledger.entries e JOIN ledger.transactions t ON t.id = e.transaction_id
              JOIN ledger.holds h ON h.job_id = t.job_id
             WHERE e.account_id LIKE 'system:revenue%' AND t.kind IN ('charge', 'refund')
             GROUP BY 1""",
    )
    return {r["key"]: r["amount"] for r in rows}


def csv_rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


async def test_reports_and_an_invoice_match_the_ledger_and_a_user_is_deleted_when_settled(
    system,
):
    # The days the test's jobs can fall on: read before the first job and after the last,
    # so a run that crosses midnight still asks for the days its jobs were printed on.
    first_day = date.today().isoformat()
    system.ctl("printer", "add", "lab-1", "--price-per-page", "0.10")
    system.ctl("printer", "add", "lab-2", "--price-per-page", "0.15")
    system.ctl("user", "add", "ann", "--balance", "5.00", "--group", "staff")
    system.ctl("user", "add", "bob", "--balance", "5.00", "--group", "students")
    system.ctl("account", "add", "physics")
    system.ctl("account", "grant", "physics", "--user", "bob")

    print_job(system, "ann", "lab-1", 3)  # 0.30
    refunded = print_job(system, "ann", "lab-2", 2)  # 0.30, 0.10 of it refunded
    print_job(system, "bob", "lab-2", 1)  # 0.15
    system.ctl("user", "set", "bob", "--default-account", "physics")
    print_job(system, "bob", "lab-1", 4)  # 0.40, to the shared account

    async def charged() -> bool:
        rows = await query(
            system.database_url,
            "SELECT count(*) AS n FROM ledger.transactions WHERE kind = 'charge'",
        )
        return rows[0]["n"] == 4

    # Each charge is committed before `--wait` returns; this says so from the tables.
    assert await eventually(charged, timeout=60)
    system.ctl("refund", refunded, "--amount", "0.10", "--reason", "smudged")
    last_day = date.today().isoformat()

    by_printer = csv_rows(
        system.ctl(
            "report", "--by", "printer", "--from", first_day, "--to", last_day, "--csv"
        ).stdout
    )
    assert [(r["printer"], r["jobs"], r["sides"]) for r in by_printer] == [
        ("lab-1", "2", "7"),
        ("lab-2", "2", "3"),
        ("TOTAL", "4", "10"),
    ]
    assert {r["printer"]: D(r["amount"]) for r in by_printer[:-1]} == await ledger_sums(
        system, "printer"
    )
    total = D(by_printer[-1]["amount"])
    assert total == D("1.05") == sum(D(r["amount"]) for r in by_printer[:-1])
    by_user = csv_rows(system.ctl("report", "--by", "user", "--csv").stdout)
    assert {r["user"]: D(r["amount"]) for r in by_user[:-1]} == await ledger_sums(
        system, "user_login"
    )
    assert [(r["user"], D(r["charged"]), D(r["refunded"])) for r in by_user] == [
        ("ann", D("0.60"), D("0.10")),
        ("bob", D("0.55"), D("0")),
        ("TOTAL", D("1.15"), D("0.10")),
    ]
    # Every cent of revenue there is, and the ledger sound.
    revenue = await query(
        system.database_url,
        "SELECT sum(balance) AS total FROM ledger.accounts WHERE id LIKE 'system:revenue%'",
    )
    assert revenue[0]["total"] == total
    assert "ledger OK" in system.ctl("ledger", "verify").stdout

    invoice = csv_rows(
        system.ctl(
            "account", "invoice", "physics", "--from", first_day, "--to", last_day, "--csv"
        ).stdout
    )
    assert [(r["kind"], r["user"], r["printer"], r["sides"], r["amount"]) for r in invoice] == [
        ("charge", "bob", "lab-1", "4", "0.40"),
        ("TOTAL", "", "", "", "0.40"),
    ]
    statement = csv_rows(system.ctl("statement", "physics", "--csv").stdout)
    assert -sum(D(r["amount"]) for r in statement if r["kind"] in ("charge", "refund")) == D(
        invoice[-1]["amount"]
    )

    # Ann still has money: refused, saying so; with her balance at zero, deleted.
    refused = system.ctl("user", "delete", "ann", check=False)
    assert refused.returncode == 1 and "balance of 4.50" in refused.stderr
    system.ctl("adjust", "ann", "-4.50", "--reason", "paid out on leaving")
    assert "deleted on" in system.ctl("user", "delete", "ann").stdout
    assert "deleted already" in system.ctl("user", "delete", "ann").stdout
    path = system.tmp / "after.pdf"
    path.write_bytes(make_pdf(1))
    late = system.ctl(
        "print", str(path), "--user", "ann", "--printer", "lab-1", "--wait", check=False
    )
    assert late.returncode == 2 and "deleted" in late.stdout
    assert "ann" not in system.ctl("user", "list").stdout

    # Nor may she sign in: no desktop credential is issued to her, once the notification
    # service has taken the ledger's `user.disabled` for the deletion (in its own time).
    async def refused_a_credential():
        out = system.ctl("user", "credential", "ann", "--output", "ann.toml", check=False)
        return out if out.returncode == 1 else None

    no_desktop = await eventually(refused_a_credential)
    assert no_desktop is not None and "disabled" in no_desktop.stderr
    # Her history stays: the report still shows what she printed.
    again = csv_rows(system.ctl("report", "--by", "user", "--csv").stdout)
    assert [(r["user"], r["amount"]) for r in again[:1]] == [("ann", "0.50")]
    assert await ledger_problems(system.database_url) == []

    # --- an ordinary user gets no report: neither a desktop nor a print server.
    system.ctl("user", "credential", "bob", "--output", "bob.toml")
    config = tomllib.loads((system.tmp / "bob.toml").read_text())
    desktop = with_credentials(config["url"], "bob", config["password"])
    for who in (desktop, system.print_server_url):
        conn = await aio_pika.connect(who)
        try:
            ch = await conn.channel(publisher_confirms=True)
            commands = await ch.get_exchange("platen.commands", ensure=False)
            with pytest.raises(ChannelAccessRefused):
                asked = command(UsageReportQuery(by="user"), user_id=signed_in_as(who))
                await commands.publish(asked, routing_key="ledger.report")
        finally:
            await conn.close()
    # One that reaches the ledger's queue anyway (put there by the broker's administrator,
    # who alone may use the default exchange) is refused by who sent it.
    conn = await aio_pika.connect(system.amqp_url)
    async with conn:
        ch = await conn.channel(publisher_confirms=True)
        stray = command(UsageReportQuery(by="user"), user_id=signed_in_as(system.amqp_url))
        await ch.default_exchange.publish(stray, routing_key="account-ledger.commands")

    async def refused_by_the_ledger() -> bool:
        out = system.ctl("dlq", "list", "--json", check=False)
        return stray.message_id in out.stdout and "accepted only from admin" in out.stdout

    assert await eventually(refused_by_the_ledger, timeout=30)
