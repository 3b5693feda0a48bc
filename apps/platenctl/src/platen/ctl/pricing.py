"""platenctl commands for pricing: cost models, printer groups, policies and quotes."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from pydantic import ValidationError

from platen.ctl import print_identity
from platen.ctl.common import call, fail
from platen.events.jobs import AnalyseDocument, DocumentAnalysis
from platen.events.print_identity import GetPrinterIdentity
from platen.events.printers import (
    PAPER_SIZES,
    CostModel,
    PaperRates,
    Policy,
    PolicyView,
    PrinterView,
    Quote,
    QuoteJob,
    SetCostModel,
    SetPolicy,
    SetPrinterGroups,
    ShowPrinter,
)

T = TypeVar("T")
Json = Annotated[bool, typer.Option("--json", help="Print JSON.")]
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
PAPER_HELP = (
    "Prices on one paper size: SIZE=GRAY[,COLOUR[,GRAY_DUPLEX[,COLOUR_DUPLEX]]], e.g. "
    f"A3=0.20,1.00,,0.90 (repeatable). Sizes: {', '.join(PAPER_SIZES)}."
)


def valid(build: Callable[[], T]) -> T:
    """Build a command, turning the contract's validation errors into one clear message."""
    try:
        return build()
    except ValidationError as exc:
        reasons = []
        for error in exc.errors():
            message = error["msg"].removeprefix("Value error, ")
            where = ".".join(str(part) for part in error["loc"])
            reasons.append(message if error["type"] == "value_error" else f"{where}: {message}")
        raise fail("; ".join(reasons)) from None


def parse_paper(spec: str) -> dict[str, str]:
    size, sep, prices = spec.partition("=")
    fields = ("grayscale", "color", "grayscale_duplex", "color_duplex")
    values = prices.split(",") if sep else []
    if not sep or not values[0] or len(values) > len(fields):
        raise fail(f"--paper {spec!r}: write SIZE=GRAY[,COLOUR[,GRAY_DUPLEX[,COLOUR_DUPLEX]]]")
    return {"paper": size, **{f: v for f, v in zip(fields, values, strict=False) if v}}


def print_printer(view: PrinterView, as_json: bool) -> None:
    if as_json:
        typer.echo(view.model_dump_json())
        return
    model = view.cost_model or CostModel(page=view.price_per_page)
    typer.echo(f"{view.name}: schedule version {view.schedule_version}")
    color = f", colour page {model.color_page}" if model.color_page is not None else ""
    typer.echo(f"  page {model.page}{color}")
    for rates in model.papers:
        typer.echo("  " + describe_rates(rates))
    if model.duplex_discount:
        typer.echo(f"  duplex discount {model.duplex_discount} %")
    if model.per_job:
        typer.echo(f"  per job {model.per_job}")
    if view.groups:
        typer.echo(f"  printer groups: {', '.join(view.groups)}")
    for scoped in view.policies:
        typer.echo(f"  {scoped.scope} {scoped.target} policy: {describe_policy(scoped.policy)}")


def describe_rates(rates: PaperRates) -> str:
    parts = [f"grayscale {rates.grayscale}"]
    if rates.color is not None:
        parts.append(f"colour {rates.color}")
    if rates.grayscale_duplex is not None:
        parts.append(f"grayscale duplex {rates.grayscale_duplex}")
    if rates.color_duplex is not None:
        parts.append(f"colour duplex {rates.color_duplex}")
    return f"{rates.paper}: " + ", ".join(parts)


def describe_policy(policy: Policy) -> str:
    parts = []
    if policy.max_pages is not None:
        parts.append(f"at most {policy.max_pages} pages")
    if policy.color_groups is not None:
        parts.append(f"colour for {', '.join(policy.color_groups) or 'nobody'}")
    if policy.confirm_above_cost is not None:
        parts.append(f"confirm above {policy.confirm_above_cost}")
    if policy.confirm_above_pages is not None:
        parts.append(f"confirm above {policy.confirm_above_pages} pages")
    if policy.suggest_duplex:
        parts.append("suggest duplex")
    if policy.suggest_grayscale:
        parts.append("suggest grayscale")
    if policy.message:
        parts.append(f"message {policy.message!r}")
    return "; ".join(parts) or "none"


def register(app: typer.Typer, printer_app: typer.Typer) -> None:
    @printer_app.command("set")
    def printer_set(
        name: str,
        page: Annotated[str, typer.Option(help="Price of a printed side.")],
        color_page: Annotated[
            str | None, typer.Option(help="Price of a side with colour (page-level colour).")
        ] = None,
        paper: Annotated[list[str], typer.Option(help=PAPER_HELP)] = [],  # noqa: B006
        duplex_discount: Annotated[
            str, typer.Option(help="Percent off every side of a double-sided job.")
        ] = "0",
        per_job: Annotated[str, typer.Option(help="Price added once to every job.")] = "0",
        as_json: Json = False,
    ) -> None:
        """Set a printer's whole cost model, as a new schedule version (applies to jobs
        captured from now on). Options left out take their defaults."""
        cmd = valid(
            lambda: SetCostModel(
                name=name,
                model=CostModel.model_validate(
                    {
                        "page": page,
                        "color_page": color_page,
                        "papers": [parse_paper(spec) for spec in paper],
                        "duplex_discount": duplex_discount,
                        "per_job": per_job,
                    }
                ),
            )
        )
        print_printer(call(cmd), as_json)

    @printer_app.command("show")
    def printer_show(name: str, as_json: Json = False) -> None:
        """Show a printer's cost model, schedule version, groups and policies, and (from
        job-capture) how its jobs prove whose they are."""
        print_printer(call(valid(lambda: ShowPrinter(name=name))), as_json)
        if not as_json:
            view = call(valid(lambda: GetPrinterIdentity(printer=name)))
            typer.echo(f"  {print_identity.describe(view)}")

    @printer_app.command("groups")
    def printer_groups(
        name: str,
        group: Annotated[list[str], typer.Argument(help="Printer groups (none: no group).")] = [],  # noqa: B006
        as_json: Json = False,
    ) -> None:
        """Put a printer in these printer groups (replaces its list)."""
        print_printer(call(valid(lambda: SetPrinterGroups(name=name, groups=group))), as_json)

    @printer_app.command("policy")
    def printer_policy(
        target: Annotated[str, typer.Argument(help="A printer, or with --group a group.")],
        group: Annotated[bool, typer.Option("--group", help="TARGET is a printer group.")] = False,
        max_pages: Annotated[int | None, typer.Option(help="Deny jobs over N pages.")] = None,
        color_groups: Annotated[
            str | None,
            typer.Option(help="Only these user groups may print colour (comma-separated)."),
        ] = None,
        confirm_above_cost: Annotated[
            str | None, typer.Option(help="Ask to confirm jobs costing more.")
        ] = None,
        confirm_above_pages: Annotated[
            int | None, typer.Option(help="Ask to confirm jobs of more pages.")
        ] = None,
        suggest_duplex: Annotated[bool, typer.Option(help="Suggest double-sided.")] = False,
        suggest_grayscale: Annotated[bool, typer.Option(help="Suggest grayscale.")] = False,
        message: Annotated[str | None, typer.Option(help="A message for every job.")] = None,
        as_json: Json = False,
    ) -> None:
        """Set the policy of a printer or printer group (replaces it; no options: removes)."""
        cmd = valid(
            lambda: SetPolicy(
                scope="group" if group else "printer",
                target=target,
                policy=Policy(
                    max_pages=max_pages,
                    color_groups=None
                    if color_groups is None
                    else [g.strip() for g in color_groups.split(",") if g.strip()],
                    confirm_above_cost=confirm_above_cost,
                    confirm_above_pages=confirm_above_pages,
                    suggest_duplex=suggest_duplex,
                    suggest_grayscale=suggest_grayscale,
                    message=message,
                ),
            )
        )
        view: PolicyView = call(cmd)
        if as_json:
            typer.echo(view.model_dump_json())
            return
        typer.echo(f"{view.scope} {view.target} policy: {describe_policy(view.policy)}")

    @app.command()
    def quote(
        file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
        printer: Annotated[str, typer.Option(help="Which printer.")],
        copies: Annotated[int, typer.Option(min=1, max=999)] = 1,
        duplex: Annotated[bool, typer.Option(help="Double-sided.")] = False,
        user: Annotated[str | None, typer.Option(help="Apply policies as this user.")] = None,
        as_json: Json = False,
    ) -> None:
        """Price FILE on a printer without printing it: job-capture analyses it as it would
        a job, and pricing prices it as it would a job."""
        size = file.stat().st_size
        if size > MAX_DOCUMENT_BYTES:
            raise fail(f"{file} is {size} bytes; the largest document is {MAX_DOCUMENT_BYTES}")
        document = base64.b64encode(file.read_bytes()).decode()
        analysis: DocumentAnalysis = call(
            valid(lambda: AnalyseDocument(document=document, duplex=duplex)), timeout=150
        )
        result: Quote = call(
            valid(
                lambda: QuoteJob(
                    printer=printer,
                    user=user,
                    copies=copies,
                    duplex=duplex,
                    side_groups=analysis.side_groups,
                )
            )
        )
        if as_json:
            typer.echo(json.dumps(json.loads(result.model_dump_json())))
            return
        typer.echo(
            f"{file.name} on {printer}: {result.cost} (schedule version {result.schedule_version})"
        )
        typer.echo(
            f"  {result.sides} pages a copy ({result.color_sides} colour, "
            f"{result.grayscale_sides} grayscale) x {result.copies}"
            f"{', double-sided' if result.duplex else ''}"
        )
        for line in result.breakdown:
            typer.echo(
                f"  {line.quantity:>5} x {line.unit_price:<8} {line.amount:>10}  {line.description}"
            )
        if result.denied:
            typer.echo(f"  would be DENIED: {result.denied}")
        elif result.confirm:
            typer.echo("  the user would be asked to confirm it")
        for text in result.messages:
            typer.echo(f"  message: {text}")
