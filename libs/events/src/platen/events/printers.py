"""The printer aggregate: what pricing knows about each printer.

A printer has a cost model (how much each printed side costs), kept as numbered versions
(a price schedule: each change makes a new version, which applies to jobs captured after
it), and the print policies of the printer and of the printer groups it belongs to.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from platen.events.accounts import GroupName
from platen.events.base import Command, Login, Part, PrinterName, Query, Reply, upcasts
from platen.events.jobs import PriceLine, SideGroup, sides_for_pages
from platen.events.money import Money
from platen.events.registry import register

# The paper sizes job-capture names (see its analysis). A page of any other size is named
# "<short>x<long>mm" and is priced at the model's default rates.
PAPER_SIZES = ("A2", "A3", "A4", "A5", "A6", "Letter", "Legal", "Tabloid")
MAX_PRICE = 10_000


def _price(value: Decimal | None, what: str) -> Decimal | None:
    if value is None:
        return None
    if value < 0:
        raise ValueError(f"{what} cannot be negative (got {value})")
    if value > MAX_PRICE:
        raise ValueError(f"{what} cannot be more than {MAX_PRICE} (got {value})")
    return value


class PaperRates(Part):
    """Prices of one side on one paper size. A price left out falls back: colour to
    grayscale, duplex to the same colour's simplex price."""

    paper: str
    grayscale: Money
    color: Money | None = None
    grayscale_duplex: Money | None = None
    color_duplex: Money | None = None

    @field_validator("paper")
    @classmethod
    def _known_paper(cls, paper: str) -> str:
        if paper not in PAPER_SIZES:
            raise ValueError(f"unknown paper size {paper!r}; known sizes: {', '.join(PAPER_SIZES)}")
        return paper

    @model_validator(mode="after")
    def _prices(self) -> PaperRates:
        for name in ("grayscale", "color", "grayscale_duplex", "color_duplex"):
            _price(getattr(self, name), f"the {self.paper} {name.replace('_', ' ')} price")
        return self


class CostModel(Part):
    """How a printer charges. See docs/pricing.md for a worked example of each part.

    - `page`: the price of a printed side (the simple model);
    - `color_page`: page-level colour, the price of a side with colour on it (None: the
      same as `page`);
    - `papers`: a table by paper size x colour x simplex/duplex, which overrides the
      two prices above for the sizes it names;
    - `duplex_discount`: a percentage taken off every side of a double-sided job;
    - `per_job`: a price added once to every job, however many copies.
    """

    page: Money
    color_page: Money | None = None
    papers: list[PaperRates] = Field(default_factory=list)
    duplex_discount: Money = Decimal(0)
    per_job: Money = Decimal(0)

    @model_validator(mode="after")
    def _valid(self) -> CostModel:
        _price(self.page, "the price of a page")
        _price(self.color_page, "the price of a colour page")
        _price(self.per_job, "the price per job")
        if not self.duplex_discount.is_finite() or not 0 <= self.duplex_discount <= 100:
            raise ValueError(
                f"the duplex discount is a percentage from 0 to 100 (got {self.duplex_discount})"
            )
        seen = [rates.paper for rates in self.papers]
        twice = sorted({p for p in seen if seen.count(p) > 1})
        if twice:
            raise ValueError(f"paper size listed twice: {', '.join(twice)}")
        return self


class Policy(Part):
    """Print policy for a printer or a printer group. Every field left out says nothing.

    - `max_pages`: deny a job that prints more sides than this (all copies together);
    - `color_groups`: only users in one of these user groups (the ledger's groups) may
      print colour; others are denied a job with colour in it;
    - `confirm_above_cost` / `confirm_above_pages`: the user must confirm a job that costs
      more than this, or prints more sides than this;
    - `suggest_duplex` / `suggest_grayscale`: add a suggestion to a single-sided job of
      more than one side / a job with colour in it; `message`: a message for every job.
    """

    max_pages: int | None = Field(default=None, ge=1)
    color_groups: list[GroupName] | None = None
    confirm_above_cost: Money | None = None
    confirm_above_pages: int | None = Field(default=None, ge=0)
    suggest_duplex: bool = False
    suggest_grayscale: bool = False
    message: str | None = Field(default=None, min_length=1, max_length=500)

    @model_validator(mode="after")
    def _valid(self) -> Policy:
        _price(self.confirm_above_cost, "the cost above which to confirm")
        return self


@register
class AddPrinter(Command):
    """Command to pricing (`pricing.printer.add`): create a printer with the simple model,
    or change the price of a page of an existing one (its other prices stay)."""

    message_type: ClassVar[str] = "pricing.printer.add"
    name: PrinterName
    price_per_page: Money = Field(ge=0, le=MAX_PRICE)


@register
class SetCostModel(Command):
    """Command to pricing (`pricing.printer.cost.set`): a new version of the printer's
    price schedule (the printer is created if it is new). Jobs captured from now on are
    priced with it; jobs captured before keep the version they were captured under."""

    message_type: ClassVar[str] = "pricing.printer.cost.set"
    name: PrinterName
    model: CostModel


@register
class SetPrinterGroups(Command):
    """Command to pricing (`pricing.printer.groups.set`): the printer groups a printer is
    in (replaces the list), whose policies apply to it."""

    message_type: ClassVar[str] = "pricing.printer.groups.set"
    name: PrinterName
    groups: list[PrinterName]


@register
class SetPolicy(Command):
    """Command to pricing (`pricing.policy.set`): the policy of one printer or one printer
    group (replaces what was there; an empty Policy removes it)."""

    message_type: ClassVar[str] = "pricing.policy.set"
    scope: Literal["printer", "group"]
    target: PrinterName
    policy: Policy


@register
class PolicyView(Reply):
    """Reply to `pricing.policy.set`: the policy now in place (empty: none)."""

    message_type: ClassVar[str] = "pricing.policy"
    scope: Literal["printer", "group"]
    target: str
    policy: Policy


@register
class ShowPrinter(Query):
    message_type: ClassVar[str] = "pricing.printer.show"
    name: PrinterName


class ScopedPolicy(Part):
    scope: Literal["printer", "group"]
    target: str
    policy: Policy


@register
class PrinterView(Reply):
    """A printer as pricing sees it. Version 2 added the cost model, its version and the
    policies that apply; `price_per_page` is the model's `page` price."""

    message_type: ClassVar[str] = "pricing.printer"
    schema_version: ClassVar[int] = 2
    name: str
    price_per_page: Money
    schedule_version: int = 0
    cost_model: CostModel | None = None
    groups: list[str] = Field(default_factory=list)
    policies: list[ScopedPolicy] = Field(default_factory=list)

    @upcasts(1)
    def _v1_to_v2(body: dict) -> dict:
        # Version 1 knew only one price per page: that is the simple model, version unknown.
        return {
            **body,
            "schedule_version": 0,
            "cost_model": {"page": body["price_per_page"]},
            "groups": [],
            "policies": [],
        }


@register
class QuoteJob(Query):
    """Query to pricing (`pricing.quote`): what would this job cost, and what would the
    policies say? The side groups come from job-capture's analysis (`capture.analyse`), so
    a quote is priced by the same code, with the same schedule rules, as a real job."""

    message_type: ClassVar[str] = "pricing.quote"
    printer: PrinterName
    user: Login | None = None
    copies: int = Field(default=1, ge=1, le=999)
    duplex: bool = False
    side_groups: list[SideGroup] = Field(min_length=1)


@register
class Quote(Reply):
    """Reply to `pricing.quote`. `denied` holds the reason a policy would deny the job.

    Version 2: `pages` became `sides` (printed sides of one copy, as counted
    for the price); `color_pages` and `grayscale_pages` became `color_sides` and
    `grayscale_sides`.
    """

    message_type: ClassVar[str] = "pricing.quote.reply"
    schema_version: ClassVar[int] = 2
    quote_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    printer: str
    cost: Money
    schedule_version: int
    sides: int
    copies: int
    color_sides: int
    grayscale_sides: int
    duplex: bool
    breakdown: list[PriceLine]
    denied: str | None = None
    confirm: bool = False
    messages: list[str] = Field(default_factory=list)

    @upcasts(1)
    def _v1_to_v2(body: dict) -> dict:
        return sides_for_pages(body)
