"""Pricing rules: the cost of a job, rounded once, half up, to the cent."""

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from platen.pricing.domain import job_cost


@pytest.mark.parametrize(
    ("pages", "copies", "price", "expected"),
    [
        (3, 1, "0.10", "0.30"),
        (1, 1, "0.035", "0.04"),  # 0.035 -> half up
        (2, 1, "0.035", "0.07"),  # 0.070
        (1, 1, "0.0349", "0.03"),  # below the half: down
        (1, 1, "0.005", "0.01"),
        (1, 1, "0.0049", "0.00"),
        (1, 1, "0.025", "0.03"),  # half up, not half even (which would give 0.02)
        (3, 2, "0.10", "0.60"),  # copies multiply
        (1, 3, "0.035", "0.11"),  # 0.105 rounded once, not 0.04 x 3 = 0.12
        (10, 3, "0.035", "1.05"),  # 1.050
        (7, 1, "0.0125", "0.09"),  # 0.0875
        (3, 1, "1", "3.00"),
        (5, 1, "0", "0.00"),
        (0, 1, "0.10", "0.00"),
        (1, 0, "0.10", "0.00"),
        (999, 999, "10000", "9980010000.00"),
    ],
)
def test_hand_worked_costs(pages, copies, price, expected):
    cost = job_cost(pages, copies, Decimal(price))
    assert isinstance(cost, Decimal)
    assert cost == Decimal(expected)
    # Always two places, even for whole amounts and zero ("3.00", not "3").
    assert str(cost) == expected


def test_zero_price_is_zero_with_two_places():
    cost = job_cost(12, 4, Decimal("0"))
    assert cost.as_tuple().exponent == -2
    assert str(cost) == "0.00"


def test_rounding_happens_once_at_the_end():
    # Per page: 0.004 rounds to 0.00, so rounding early would make 10 pages free.
    assert job_cost(10, 1, Decimal("0.004")) == Decimal("0.04")


@pytest.mark.parametrize(("pages", "copies"), [(-1, 1), (1, -1), (-3, -2)])
def test_negative_pages_or_copies_are_refused(pages, copies):
    with pytest.raises(ValueError, match="negative"):
        job_cost(pages, copies, Decimal("0.10"))


prices = st.decimals(min_value=0, max_value=10_000, places=6, allow_nan=False)


def half_up_to_cents(exact: Fraction) -> Decimal:
    """An independent rounding, over exact fractions, for non-negative amounts."""
    cents = int(exact * 100 + Fraction(1, 2))  # int() floors a non-negative Fraction
    return Decimal(cents) / 100


@given(
    pages=st.integers(min_value=0, max_value=10_000),
    copies=st.integers(min_value=0, max_value=999),
    price=prices,
)
def test_cost_is_the_exact_product_rounded_half_up_to_cents(pages, copies, price):
    cost = job_cost(pages, copies, price)
    exact = Fraction(price) * pages * copies
    assert isinstance(cost, Decimal)
    assert cost >= 0
    assert cost.as_tuple().exponent == -2
    assert cost == half_up_to_cents(exact)
    assert abs(Fraction(cost) - exact) <= Fraction(1, 200)


@given(
    pages=st.integers(min_value=0, max_value=1_000),
    copies=st.integers(min_value=1, max_value=999),
    price=prices,
)
def test_more_pages_never_cost_less(pages, copies, price):
    assert job_cost(pages + 1, copies, price) >= job_cost(pages, copies, price)


def test_a_negative_price_is_refused():
    with pytest.raises(ValueError):
        job_cost(1, 1, Decimal("-0.10"))
