"""The ledger's rules. Pure logic: no database, no broker."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class Decision:
    authorized: bool
    reason: str | None = None


def authorize(
    *,
    balance: Decimal,
    held: Decimal,
    cost: Decimal,
    restricted: bool,
    overdraft_limit: Decimal = Decimal(0),
) -> Decision:
    """May a job costing `cost` be reserved against this account?

    Funds already held for jobs still printing count as spent, so two jobs that each fit
    but together do not cannot both be authorised.
    """
    if cost < 0:
        raise ValueError("a job cannot cost less than nothing")
    if overdraft_limit < 0:
        raise ValueError("an overdraft limit is zero or more")
    if not restricted:
        return Decision(True)
    available = balance - held
    if available - cost >= -overdraft_limit:
        return Decision(True)
    return Decision(
        False,
        f"insufficient credit: this job costs {cost}, your available balance is {available}",
    )


def personal_account(login: str) -> str:
    return f"personal:{login}"


REVENUE = "system:revenue"
FUNDING = "system:funding"
