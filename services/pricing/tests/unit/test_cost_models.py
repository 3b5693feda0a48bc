"""Cost models against hand-worked examples, and properties every price must keep.

Each example is worked in the comment beside it, the way docs/pricing.md works them.
"""

from __future__ import annotations

import random
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from platen.events.printers import CostModel, PaperRates
from platen.pricing.domain import Job, Sides, price

D = Decimal


def job(*groups: tuple[str, bool, int], copies: int = 1, duplex: bool = False) -> Job:
    return Job(tuple(Sides(*g) for g in groups), copies, duplex)


def lines(priced) -> list[tuple[str, int, str, str]]:
    return [
        (ln.description, ln.quantity, str(ln.unit_price), str(ln.amount)) for ln in priced.breakdown
    ]


def test_simple_model_fractional_cent_price_rounds_once_half_up():
    # 21 sides x 0.035 = 0.735 exactly; rounded once, half up: 0.74.
    priced = price(CostModel(page=D("0.035")), job(("A4", False, 21)))
    assert priced.cost == D("0.74")
    assert str(priced.cost) == "0.74"
    assert lines(priced) == [
        ("A4, grayscale, single-sided (page price)", 21, "0.035", "0.735"),
        ("rounded to the cent, half up", 1, "0.005", "0.005"),
    ]
    assert (priced.sides, priced.color_sides, priced.grayscale_sides) == (21, 0, 21)


def test_simple_model_charges_colour_at_the_page_price():
    # No colour price: colour sides cost what grayscale ones do. 3 x 0.10 = 0.30.
    priced = price(CostModel(page=D("0.10")), job(("A4", True, 1), ("A4", False, 2)))
    assert priced.cost == D("0.30")
    assert priced.color_sides == 1


def test_page_level_colour_21_pages_one_in_colour():
    # 20 grayscale x 0.10 = 2.00; 1 colour x 0.50 = 0.50; total 2.50.
    model = CostModel(page=D("0.10"), color_page=D("0.50"))
    priced = price(model, job(("A4", False, 20), ("A4", True, 1)))
    assert priced.cost == D("2.50")
    assert lines(priced) == [
        ("A4, grayscale, single-sided (page price)", 20, "0.10", "2.00"),
        ("A4, colour, single-sided (colour page price)", 1, "0.50", "0.50"),
    ]


def test_duplex_discount_comes_off_the_sides():
    # Same job double-sided with 20 % off: 2.50 - 0.50 = 2.00.
    model = CostModel(page=D("0.10"), color_page=D("0.50"), duplex_discount=D("20"))
    priced = price(model, job(("A4", False, 20), ("A4", True, 1), duplex=True))
    assert priced.cost == D("2.00")
    assert lines(priced)[-1] == ("double-sided discount, 20 % of 2.50", 1, "-0.50", "-0.50")
    # Single-sided, no discount.
    assert price(model, job(("A4", False, 20), ("A4", True, 1))).cost == D("2.50")


def test_copies_multiply_the_sides_not_the_price_per_job():
    # 3 sides x 4 copies = 12 x 0.035 = 0.42; plus 0.25 a job, once: 0.67.
    model = CostModel(page=D("0.035"), per_job=D("0.25"))
    priced = price(model, job(("A4", False, 3), copies=4))
    assert priced.cost == D("0.67")
    assert lines(priced) == [
        ("A4, grayscale, single-sided (page price)", 12, "0.035", "0.420"),
        ("price per job", 1, "0.25", "0.25"),
    ]
    assert priced.total_sides == 12


def test_table_by_paper_colour_and_duplex():
    # A3 colour double-sided has its own price: 3 sides x 2 copies x 0.90 = 5.40.
    # A4 grayscale has no duplex price, so its simplex one: 4 x 2 x 0.10 = 0.80.
    # Sides 6.20, 10 % duplex discount -0.62 = 5.58, plus 0.25 per job = 5.83.
    model = CostModel(
        page=D("0.05"),
        papers=[
            PaperRates(paper="A4", grayscale=D("0.10"), color=D("0.60")),
            PaperRates(paper="A3", grayscale=D("0.20"), color=D("1.00"), color_duplex=D("0.90")),
        ],
        duplex_discount=D("10"),
        per_job=D("0.25"),
    )
    priced = price(model, job(("A3", True, 3), ("A4", False, 4), copies=2, duplex=True))
    assert priced.cost == D("5.83")
    assert lines(priced) == [
        ("A3, colour, double-sided (A3 colour duplex price)", 6, "0.90", "5.40"),
        ("A4, grayscale, double-sided (A4 grayscale price)", 8, "0.10", "0.80"),
        ("double-sided discount, 10 % of 6.20", 1, "-0.62", "-0.62"),
        ("price per job", 1, "0.25", "0.25"),
    ]


def test_table_falls_back_to_the_page_prices_for_other_paper():
    # Letter is not in the table and a custom size never is: page 0.05, colour 0.30.
    model = CostModel(
        page=D("0.05"),
        color_page=D("0.30"),
        papers=[PaperRates(paper="A4", grayscale=D("0.10"))],
    )
    priced = price(model, job(("100x200mm", False, 2), ("Letter", True, 1), ("A4", True, 1)))
    # A4 colour has no colour price in the table: its grayscale one, 0.10.
    # 2 x 0.05 + 0.30 + 0.10 = 0.50.
    assert priced.cost == D("0.50")
    assert [ln.unit_price for ln in priced.breakdown] == [D("0.05"), D("0.10"), D("0.30")]


def test_a_full_duplex_discount_leaves_only_the_price_per_job():
    model = CostModel(page=D("0.10"), duplex_discount=D("100"), per_job=D("0.05"))
    assert price(model, job(("A4", False, 7), duplex=True)).cost == D("0.05")


@pytest.mark.parametrize(
    ("unit", "sides", "expected"),
    [
        ("0.025", 1, "0.03"),  # half up, not half even (0.02)
        ("0.0049", 1, "0.00"),
        ("0.005", 1, "0.01"),
        ("0.0125", 7, "0.09"),  # 0.0875
        ("0.004", 10, "0.04"),  # rounded once: per side it would be 0.00
        ("0.0333", 3, "0.10"),  # 0.0999
    ],
)
def test_rounding_at_the_end(unit, sides, expected):
    assert price(CostModel(page=D(unit)), job(("A4", False, sides))).cost == D(expected)


def test_an_odd_duplex_job_pays_for_printed_sides_only():
    # 3 sides double-sided take 2 sheets; the blank back of the second is not charged.
    model = CostModel(page=D("0.10"))
    assert price(model, job(("A4", False, 3), duplex=True)).cost == D("0.30")


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"page": "-0.01"}, "the price of a page cannot be negative"),
        ({"page": "0.1", "color_page": "-1"}, "colour page cannot be negative"),
        ({"page": "0.1", "per_job": "-1"}, "price per job cannot be negative"),
        ({"page": "0.1", "duplex_discount": "100.01"}, "percentage from 0 to 100"),
        ({"page": "0.1", "duplex_discount": "-5"}, "percentage from 0 to 100"),
        ({"page": "10001"}, "cannot be more than 10000"),
        ({"page": 0.1}, "not a float"),
        (
            {"page": "0.1", "papers": [{"paper": "B4", "grayscale": "0.1"}]},
            "unknown paper size 'B4'",
        ),
        (
            {"page": "0.1", "papers": [{"paper": "A4", "grayscale": "0.1", "color": "-2"}]},
            "A4 color price cannot be negative",
        ),
        (
            {"page": "0.1", "papers": [{"paper": "A4", "grayscale": "1"}] * 2},
            "paper size listed twice: A4",
        ),
    ],
)
def test_invalid_models_are_refused_with_a_clear_error(fields, error):
    with pytest.raises(ValueError, match=error):
        CostModel.model_validate(fields)


# -- properties ---------------------------------------------------------------------------

amounts = st.decimals(min_value=0, max_value=100, places=4, allow_nan=False, allow_infinity=False)
papers = st.sampled_from(["A4", "A3", "Letter", "210x100mm"])


@st.composite
def models(draw) -> CostModel:
    table = draw(st.lists(st.sampled_from(["A4", "A3", "Letter"]), unique=True, max_size=3))
    return CostModel(
        page=draw(amounts),
        color_page=draw(st.none() | amounts),
        papers=[
            PaperRates(
                paper=p,
                grayscale=draw(amounts),
                color=draw(st.none() | amounts),
                grayscale_duplex=draw(st.none() | amounts),
                color_duplex=draw(st.none() | amounts),
            )
            for p in table
        ],
        duplex_discount=draw(st.decimals(min_value=0, max_value=100, places=2)),
        per_job=draw(amounts),
    )


side_lists = st.lists(st.tuples(papers, st.booleans()), min_size=1, max_size=60)


@given(
    model=models(),
    pages=side_lists,
    copies=st.integers(1, 999),
    duplex=st.booleans(),
    seed=st.integers(),
)
def test_price_never_negative_and_order_of_pages_does_not_matter(
    model, pages, copies, duplex, seed
):
    one_by_one = job(*((paper, color, 1) for paper, color in pages), copies=copies, duplex=duplex)
    shuffled = list(pages)
    random.Random(seed).shuffle(shuffled)
    reordered = job(*((p, c, 1) for p, c in shuffled), copies=copies, duplex=duplex)
    first, second = price(model, one_by_one), price(model, reordered)
    assert first.cost >= 0
    assert first.cost == second.cost
    assert first.breakdown == second.breakdown
    assert first.cost.as_tuple().exponent == -2
    # The breakdown explains the whole cost.
    assert sum((ln.amount for ln in first.breakdown), D(0)) == first.cost
    assert first.sides == len(pages)


@given(model=models(), pages=side_lists, copies=st.integers(1, 50), duplex=st.booleans())
def test_grouping_pages_does_not_change_the_price(model, pages, copies, duplex):
    singles = job(*((p, c, 1) for p, c in pages), copies=copies, duplex=duplex)
    counted: dict[tuple[str, bool], int] = {}
    for key in pages:
        counted[key] = counted.get(key, 0) + 1
    grouped = job(*((p, c, n) for (p, c), n in counted.items()), copies=copies, duplex=duplex)
    assert price(model, singles).cost == price(model, grouped).cost


@given(model=models(), pages=side_lists, copies=st.integers(1, 50))
def test_another_copy_never_costs_less(model, pages, copies):
    groups = [(p, c, 1) for p, c in pages]
    assert (
        price(model, job(*groups, copies=copies + 1)).cost
        >= price(model, job(*groups, copies=copies)).cost
    )
