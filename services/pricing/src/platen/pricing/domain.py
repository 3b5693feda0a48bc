"""How a job is priced, and what the printer's policies say about it. Pure logic: no
database, no broker. Real jobs and quotes both go through `assess`.

A job nobody proved was its user's (`identity_question` at the end) is asked about.

What is charged: the printed sides of one copy (job-capture's side groups, after N-up),
times the copies. A blank side that only pads a double-sided job to whole sheets (CUPS
pdftopdf adds one to an odd side count) is not in the side groups, so it is not charged:
the user pays for what is printed, and the discount is what duplex saves them.

Rounding: every line of the breakdown is exact (0.035 x 21 = 0.735); the job's total is
rounded once, half up, to the cent (0.735 -> 0.74), and a last "rounding" line records the
difference, so the breakdown always adds up to the cost.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from platen.events.jobs import JobCaptured, PriceLine
from platen.events.money import CENT
from platen.events.print_identity import IDENTITY_QUESTION
from platen.events.printers import CostModel, PaperRates, Policy

HUNDRED = Decimal(100)


@dataclass(frozen=True)
class Sides:
    """Printed sides of one copy that share a paper size and colour."""

    paper: str
    color: bool
    count: int


@dataclass(frozen=True)
class Job:
    """What pricing needs to know about a job (or a job being quoted)."""

    sides: tuple[Sides, ...]
    copies: int
    duplex: bool

    @classmethod
    def of(cls, groups: Iterable, copies: int, duplex: bool) -> Job:
        """From anything with `paper`, `color` and `count` (the contract's SideGroup)."""
        return cls(tuple(Sides(g.paper, g.color, g.count) for g in groups), copies, duplex)


@dataclass(frozen=True)
class Priced:
    cost: Decimal
    breakdown: tuple[PriceLine, ...]
    sides: int  # of one copy
    color_sides: int  # of one copy
    copies: int

    @property
    def grayscale_sides(self) -> int:
        return self.sides - self.color_sides

    @property
    def total_sides(self) -> int:
        return self.sides * self.copies


@dataclass(frozen=True)
class Verdict:
    denied: str | None = None
    confirm: bool = False
    messages: tuple[str, ...] = ()


@dataclass(frozen=True)
class Assessment:
    priced: Priced
    verdict: Verdict


def money(amount: Decimal) -> str:
    """An amount as users read it: at least two places (5 -> 5.00, 0.035 stays)."""
    if amount.as_tuple().exponent > -2:  # type: ignore[operator]
        return str(amount.quantize(CENT))
    return str(amount)


def plain(number: Decimal) -> str:
    """A number without trailing zeros or an exponent (20.0 -> 20, 2E+1 -> 20)."""
    return format(number.normalize(), "f")


def _rates(model: CostModel, paper: str) -> PaperRates | None:
    return next((rates for rates in model.papers if rates.paper == paper), None)


def rate(model: CostModel, paper: str, color: bool, duplex: bool) -> tuple[Decimal, str]:
    """The price of one side, and which price of the model it is."""
    rates = _rates(model, paper)
    if rates is None:
        if color and model.color_page is not None:
            return model.color_page, "colour page price"
        return model.page, "page price"
    simplex = rates.color if color and rates.color is not None else rates.grayscale
    kind = "colour" if color and rates.color is not None else "grayscale"
    if duplex:
        double = rates.color_duplex if color else rates.grayscale_duplex
        if double is not None:
            return double, f"{paper} {'colour' if color else 'grayscale'} duplex price"
    return simplex, f"{paper} {kind} price"


def price(model: CostModel, job: Job) -> Priced:
    if job.copies < 1:
        raise ValueError("a job has at least one copy")
    counts: Counter[tuple[str, bool]] = Counter()
    for group in job.sides:
        if group.count < 0:
            raise ValueError("a side count cannot be negative")
        counts[group.paper, group.color] += group.count
    lines: list[PriceLine] = []
    sides_total = Decimal(0)
    # Sorted, so the same sides in any order give the same breakdown (and price).
    for (paper, color), count in sorted(counts.items()):
        if count == 0:
            continue
        unit, why = rate(model, paper, color, job.duplex)
        quantity = count * job.copies
        amount = unit * quantity
        sides_total += amount
        layout = "double-sided" if job.duplex else "single-sided"
        lines.append(
            PriceLine(
                description=f"{paper}, {'colour' if color else 'grayscale'}, {layout} ({why})",
                quantity=quantity,
                unit_price=unit,
                amount=amount,
            )
        )
    exact = sides_total
    if job.duplex and model.duplex_discount > 0 and sides_total > 0:
        discount = sides_total * model.duplex_discount / HUNDRED
        exact -= discount
        lines.append(
            PriceLine(
                description=f"double-sided discount, {plain(model.duplex_discount)} % "
                f"of {money(sides_total)}",
                quantity=1,
                unit_price=-discount,
                amount=-discount,
            )
        )
    if model.per_job > 0:
        exact += model.per_job
        lines.append(
            PriceLine(
                description="price per job",
                quantity=1,
                unit_price=model.per_job,
                amount=model.per_job,
            )
        )
    cost = exact.quantize(CENT, rounding=ROUND_HALF_UP)
    if cost != exact:
        lines.append(
            PriceLine(
                description="rounded to the cent, half up",
                quantity=1,
                unit_price=cost - exact,
                amount=cost - exact,
            )
        )
    sides = sum(counts.values())
    color_sides = sum(n for (_, color), n in counts.items() if color)
    return Priced(cost, tuple(lines), sides, color_sides, job.copies)


def job_cost(pages: int, copies: int, price_per_page: Decimal) -> Decimal:
    """The simple model: every page at one price, rounded once, half up, to the cent."""
    if pages < 0 or copies < 0 or price_per_page < 0:
        raise ValueError("pages, copies and prices cannot be negative")
    return (price_per_page * pages * copies).quantize(CENT, rounding=ROUND_HALF_UP)


def judge(
    policies: Sequence[tuple[str, Policy]],
    model: CostModel,
    job: Job,
    priced: Priced,
    *,
    printer: str,
    user_groups: frozenset[str],
) -> Verdict:
    """What the policies say. `policies` pairs each policy with where it comes from (the
    printer, or a printer group), which a denial names. The first denial wins; every
    confirmation and message of the others is kept."""
    denied: str | None = None
    confirm = False
    messages: list[str] = []

    def say(text: str) -> None:
        if text not in messages:
            messages.append(text)

    for source, policy in policies:
        if policy.max_pages is not None and priced.total_sides > policy.max_pages:
            denied = denied or (
                f"this job prints {priced.total_sides} pages and {printer} takes at most "
                f"{policy.max_pages} pages a job ({source}); split it or print it elsewhere"
            )
        if (
            policy.color_groups is not None
            and priced.color_sides > 0
            and not user_groups.intersection(policy.color_groups)
        ):
            allowed = ", ".join(policy.color_groups) or "nobody"
            denied = denied or (
                f"colour printing on {printer} is only for the groups: {allowed} ({source}); "
                "print in grayscale instead"
            )
        if policy.confirm_above_cost is not None and priced.cost > policy.confirm_above_cost:
            confirm = True
            say(
                f"This job costs {priced.cost}, more than {money(policy.confirm_above_cost)}: "
                "please confirm it."
            )
        if (
            policy.confirm_above_pages is not None
            and priced.total_sides > policy.confirm_above_pages
        ):
            confirm = True
            say(
                f"This job prints {priced.total_sides} pages, more than "
                f"{policy.confirm_above_pages}: please confirm it."
            )
        if policy.suggest_duplex and not job.duplex and priced.sides > 1:
            duplex = price(model, Job(job.sides, job.copies, True))
            saving = f" (it would cost {duplex.cost})" if duplex.cost < priced.cost else ""
            say(f"Print double-sided to save paper{saving}.")
        if policy.suggest_grayscale and priced.color_sides > 0:
            gray = Job(
                tuple(Sides(s.paper, False, s.count) for s in job.sides), job.copies, job.duplex
            )
            cheaper = price(model, gray)
            saving = f" (it would cost {cheaper.cost})" if cheaper.cost < priced.cost else ""
            say(f"Print in grayscale to save colour toner{saving}.")
        if policy.message:
            say(policy.message)
    if denied:
        return Verdict(denied=denied, messages=tuple(messages))
    return Verdict(confirm=confirm, messages=tuple(messages))


def assess(
    model: CostModel,
    policies: Sequence[tuple[str, Policy]],
    job: Job,
    *,
    printer: str,
    user_groups: frozenset[str] = frozenset(),
) -> Assessment:
    """Price `job` on `printer` and apply its policies: the one path for jobs and quotes."""
    priced = price(model, job)
    verdict = judge(policies, model, job, priced, printer=printer, user_groups=user_groups)
    return Assessment(priced, verdict)


# ------------------------------------------------------------------- identity_question
# job-capture marks a job `unverified` when nothing proves its named user sent it (no
# authenticated queue, and their own desktop is not the only one at the job's host). Such a
# job is confirmed by its user or never printed: pricing, which decides what the user is
# asked, makes it a `confirm` job with this question first among its messages.


def needs_question(event: JobCaptured) -> bool:
    return event.identity == "unverified"


def question(document_name: str, origin_host: str | None, captured_at: datetime) -> str:
    """ "Did you print 'report.pdf' from HOST at 14:02?", at the server's local time."""
    host = origin_host or "an unknown computer"
    at = captured_at.astimezone().strftime("%H:%M")
    return IDENTITY_QUESTION.format(document=document_name, host=host, time=at)
