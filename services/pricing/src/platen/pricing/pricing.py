"""How a job is priced. Pure logic: no database, no broker.

The charge is rounded to the cent once, at the end, half up (0.005 -> 0.01), so that
fractional page prices (0.035 a page) add up before any rounding.
"""

from decimal import ROUND_HALF_UP, Decimal

from platen.events.money import CENT


def job_cost(pages: int, copies: int, price_per_page: Decimal) -> Decimal:
    if pages < 0 or copies < 0 or price_per_page < 0:
        raise ValueError("pages, copies and prices cannot be negative")
    return (price_per_page * pages * copies).quantize(CENT, rounding=ROUND_HALF_UP)
