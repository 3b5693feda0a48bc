"""platenctl: administer Platen and submit jobs, through the broker only."""

from __future__ import annotations

import asyncio
import csv
import functools
import json
import sys
import typing
import uuid
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from platen import rpc
from platen.ctl import (
    broadcast,
    directory,
    identity,
    job_control,
    ledger,
    pricing,
    print_identity,
    quotas,
    reports,
)
from platen.ctl.broker import broker_app
from platen.ctl.client_options import client_app
from platen.ctl.common import amount, call, cut_short, fail, print_user, run
from platen.ctl.dead_letters import dlq_app
from platen.ctl.notices import notice_app
from platen.ctl.printservers import printserver_app
from platen.ctl.watch import watch_job
from platen.events.accounts import AddUser, ShowUser
from platen.events.discovery import amqp_url
from platen.events.jobs import JobList, JobState, ListJobs, SubmitJob
from platen.events.printers import AddPrinter, PrinterView
from platen.events.system import Ping, Pong
from platen.messaging.discovery import command_prefixes

app = typer.Typer(help="Administer Platen print charging.", no_args_is_help=True)
user_app = typer.Typer(help="Users and their balances.", no_args_is_help=True)
printer_app = typer.Typer(help="Printers and their prices.", no_args_is_help=True)
app.add_typer(user_app, name="user")
app.add_typer(printer_app, name="printer")
app.add_typer(broker_app, name="broker")
app.add_typer(printserver_app, name="printserver")
app.add_typer(dlq_app, name="dlq")
app.add_typer(notice_app, name="notice")
app.add_typer(client_app, name="client")

MAX_DOCUMENT_BYTES = 16 * 1024 * 1024


async def _ping(client: rpc.Client, service: str) -> list[Pong] | None:
    """Each replica's answer: as many pings as the service's commands queue has consumers
    (one per replica), sent at once, which the queue hands round its consumers; asked
    again, up to three rounds, for a replica not heard from yet."""
    replicas = await client.consumers(f"{service}.commands")
    if not replicas:
        return None  # not started yet: `status` looks again in a moment
    key = f"{command_prefixes()[service]}.ping"
    heard: dict[str, Pong] = {}
    for _ in range(3):
        answers = await asyncio.gather(
            *(client.request(key, Ping(), 2) for _ in range(replicas)), return_exceptions=True
        )
        for answer in answers:
            if isinstance(answer, Pong):
                heard.setdefault(answer.instance, answer)
        if not heard:
            raise next(a for a in answers if isinstance(a, BaseException))
        if len(heard) >= replicas:
            break
    return sorted(heard.values(), key=lambda p: p.instance)


def service_line(name: str, pong: Pong | None, *, replica: bool = False) -> str:
    """One line of `platenctl status`: whether the service answers, whether it is ready
    (what failed if not) and where its metrics are, and its outbox when something in it
    waits (an unpublished event is a job not yet charged, or not yet released: the broker
    has been away, or refused it). `replica`: one of several, named by its process."""
    if pong is None:
        return f"{name:<16} NOT ANSWERING"
    line = f"{name:<16} up {pong.version}"
    if replica and pong.instance:
        line += f" on {pong.instance}"
    if pong.unready:
        why = ", ".join(f"{check}: {reason}" for check, reason in sorted(pong.unready.items()))
        line += f"; NOT READY ({why})"
    if pong.metrics_url:
        line += f"; metrics {pong.metrics_url}/metrics"
    if pong.outbox_waiting:
        age = pong.outbox_oldest_seconds or 0
        line += f"; outbox: {pong.outbox_waiting} waiting, the oldest for {age:.0f} s"
    if pong.outbox_refused:
        line += (
            f"; outbox: {pong.outbox_refused} refused by the broker"
            f" (see the {name} outbox table's last_error)"
        )
    return line


def status_json(services: typing.Iterable[str], answered: dict[str, list[Pong]]) -> dict:
    """`platenctl status --json`: each service's answer (its outbox's waiting rows, the
    oldest one's age in seconds, the rows refused for good: one table for all replicas),
    with `ready` and each replica's own (`replicas`: its process, metrics address and
    failed readiness checks), or null when it did not answer, for a monitor to read."""
    out: dict[str, dict | None] = {}
    for name in services:
        pongs = answered.get(name)
        if not pongs:
            out[name] = None
            continue
        replicas = [p.model_dump(mode="json", exclude={"service"}) for p in pongs]
        for replica in replicas:
            replica["ready"] = not replica["unready"]
        out[name] = {
            **replicas[0],
            "ready": all(r["ready"] for r in replicas),
            "replicas": replicas,
        }
    return out


@app.command()
def status(
    timeout: Annotated[float, typer.Option(help="Seconds to wait for all.")] = 30,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Wait until all four services answer, and list them."""

    # Every installed service (its `platen.services` entry point), by the prefix of its
    # commands: its ping is `<prefix>.ping`.
    services = command_prefixes()

    async def ask() -> dict[str, list[Pong]]:
        answered: dict[str, list[Pong]] = {}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(answered) < len(services) and loop.time() < deadline:
            missing = [s for s in services if s not in answered]
            # A fresh connection each round: before the services have declared the
            # exchanges, a request closes its channel.
            try:
                async with rpc.connect(amqp_url()) as client:
                    replies = await asyncio.gather(
                        *(_ping(client, s) for s in missing), return_exceptions=True
                    )
            except Exception:
                replies = [None] * len(missing)
            for name, reply in zip(missing, replies, strict=True):
                if isinstance(reply, list):
                    answered[name] = reply
            if len(answered) < len(services):
                # Half a second: soon enough for a script (and every end-to-end test)
                # waiting on it, and few enough connections while the services start.
                await asyncio.sleep(0.5)
        return answered

    answered = asyncio.run(ask())
    if as_json:
        typer.echo(json.dumps(status_json(services, answered), indent=2))
    else:
        for name in services:
            pongs = answered.get(name) or [None]
            for pong in pongs:
                typer.echo(service_line(name, pong, replica=len(pongs) > 1))
    if len(answered) < len(services):
        raise typer.Exit(1)
    if as_json:
        return
    for line in print_identity.status_lines():
        typer.echo(line)


@user_app.command("add")
def user_add(
    login: str,
    balance: Annotated[str, typer.Option(help="Starting balance.")] = "0",
    unrestricted: Annotated[bool, typer.Option(help="May go below zero.")] = False,
    group: Annotated[list[str], typer.Option(help="A group the user is in (repeatable).")] = [],  # noqa: B006
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Create a user with a personal account."""
    cmd = AddUser(
        login=login, initial_balance=amount(balance), restricted=not unrestricted, groups=group
    )
    print_user(call(cmd), as_json)


@user_app.command("show")
def user_show(login: str, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Show a user's balance, holds and settings."""
    print_user(call(ShowUser(login=login)), as_json)


@printer_app.command("add")
def printer_add(
    name: str,
    price_per_page: Annotated[str, typer.Option("--price-per-page", help="Price of a page.")],
) -> None:
    """Create a printer, or change its price."""
    view: PrinterView = call(AddPrinter(name=name, price_per_page=amount(price_per_page)))
    typer.echo(f"{view.name}: {view.price_per_page} a page")


@app.command("print")
def print_(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    user: Annotated[str, typer.Option(help="Whose job it is.")],
    printer: Annotated[str, typer.Option(help="Which printer.")],
    copies: Annotated[int, typer.Option(min=1, max=999)] = 1,
    duplex: Annotated[bool, typer.Option("--duplex", help="Print on both sides.")] = False,
    wait: Annotated[bool, typer.Option(help="Wait for the outcome.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait.")] = 60,
) -> None:
    """Submit FILE as a print job; print its id (and, with --wait, its outcome)."""
    size = file.stat().st_size
    if size > MAX_DOCUMENT_BYTES:
        raise fail(
            f"{file} is {size} bytes; the largest document accepted is {MAX_DOCUMENT_BYTES} bytes"
        )
    job_id = uuid.uuid4()
    cmd = SubmitJob(
        job_id=job_id,
        user=user,
        printer=printer,
        document_name=file.name,
        document=_b64(file.read_bytes()),
        copies=copies,
        duplex=duplex,
    )

    async def go() -> tuple[str, str]:
        async with rpc.connect(amqp_url()) as client:
            watcher = await watch_job(client.channel, str(job_id)) if wait else None
            await client.request(cmd.message_type, cmd, timeout=30, correlation_id=str(job_id))
            typer.echo(str(job_id))
            if watcher is None:
                return "submitted", ""
            return await watcher.outcome(timeout)

    state, detail = run(go())
    if not wait:
        return
    typer.echo(f"{state}{': ' + detail if detail else ''}")
    raise typer.Exit({"printed": 0, "denied": 2}.get(state, 3))


def _b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode()


def _when(text: str | None, option: str) -> datetime | None:
    """A date (midnight, local time) or a date and time, as the server compares them."""
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not YYYY-MM-DD[THH:MM]", param_hint=option) from None
    return when if when.tzinfo else when.astimezone()


JOB_COLUMNS = [
    "submitted_at", "job_id", "user", "printer", "document_name", "state", "reason", "pages",
    "sides", "color_sides", "grayscale_sides", "duplex", "paper_sizes", "copies", "cost",
    "account", "amount", "comment", "source", "print_server", "origin_host", "updated_at",
]  # fmt: skip


@app.command()
def jobs(
    user: Annotated[str | None, typer.Option(help="Only this user's jobs.")] = None,
    printer: Annotated[str | None, typer.Option(help="Only jobs on this printer.")] = None,
    account: Annotated[
        str | None, typer.Option(help="Only jobs charged to this account (e.g. shared:lab).")
    ] = None,
    since: Annotated[str | None, typer.Option(help="Submitted at or after (YYYY-MM-DD).")] = None,
    until: Annotated[str | None, typer.Option(help="Submitted before (YYYY-MM-DD).")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV.")] = False,
    state: Annotated[
        str | None,
        typer.Option(
            help="Only jobs in this state, e.g. unconfirmed: released jobs charged though "
            "the print server never said whether they printed (refund with `platenctl refund`)."
        ),
    ] = None,
) -> None:
    """The job log, newest first: pages, colour and grayscale sides, duplex, paper, copies,
    cost, the account charged and the user's comment, where it came from, its outcome."""
    if state is not None and state not in typing.get_args(JobState):
        raise typer.BadParameter(
            f"{state!r} is not a job state: " + ", ".join(typing.get_args(JobState)),
            param_hint="--state",
        )
    query = ListJobs(
        user=user,
        limit=limit,
        state=state,
        printer=printer,
        account=account,
        since=_when(since, "--since"),
        until=_when(until, "--until"),
    )
    result: JobList = call(query)
    if result.truncated:
        cut_short("job list", f"{len(result.jobs)} jobs", "--limit, --since or a filter")
    if as_json:
        typer.echo(json.dumps([json.loads(j.model_dump_json()) for j in result.jobs]))
        return
    if as_csv:
        out = csv.writer(sys.stdout)
        out.writerow(JOB_COLUMNS)
        for j in result.jobs:
            row = json.loads(j.model_dump_json())
            row["paper_sizes"] = " ".join(f"{k}:{v}" for k, v in sorted(j.paper_sizes.items()))
            out.writerow(["" if row[c] is None else row[c] for c in JOB_COLUMNS])
        return
    for j in result.jobs:
        cost = "-" if j.cost is None else str(j.cost)
        reason = f"  ({j.reason})" if j.reason else ""
        colour = f" {j.color_sides}c/{j.grayscale_sides}g" if j.color_sides is not None else ""
        paid = f"  {j.account}" if j.account else ""
        typer.echo(
            f"{j.submitted_at:%Y-%m-%d %H:%M:%S}  {j.job_id}  {j.user:<12} "
            f"{j.printer:<10} {j.pages or '-':>4}p{colour}{' duplex' if j.duplex else ''} "
            f"x{j.copies}  {cost:>8}{paid}  {j.state:<11} {j.document_name}{reason}"
        )


ledger.register(app, user_app)
identity.register(user_app)
pricing.register(app, printer_app)
print_identity.register(printer_app)
broadcast.register(app)
job_control.register(app)
quotas.register(app)
directory.register(app)
reports.register(app, user_app)


@functools.cache
def command() -> typer.core.TyperGroup:
    """The click command typer makes of `app`, made once per process. `app()` makes it
    again on every call: every command's signature and annotations read, about 50 ms.
    A process calls it once either way; the tests' fork server makes it before it forks,
    so that none of a run's 2,400 platenctl calls pays for it."""
    return typer.main.get_command(app)  # type: ignore[return-value]


def main() -> None:
    """`platenctl` and `python -m platen.ctl`: `app()`, with the command made once. An
    unexpected error shows Python's own traceback, not typer's rich one."""
    command()(prog_name="platenctl")
