"""The ledger's authorisation rule: may this job's cost be reserved?"""

import uuid
from collections import Counter
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from platen.account_ledger.domain import Decision, authorize, personal_account

D = Decimal


def test_exactly_enough_is_authorised():
    decision = authorize(balance=D("5.00"), held=D("0"), cost=D("5.00"), restricted=True)
    assert decision == Decision(True)
    assert decision.reason is None


def test_one_cent_short_is_denied_with_cost_and_available_in_the_reason():
    decision = authorize(balance=D("5.00"), held=D("0.00"), cost=D("5.01"), restricted=True)
    assert not decision.authorized
    assert decision.reason == (
        "insufficient credit: this job costs 5.01, your available balance is 5.00"
    )


def test_held_funds_count_as_spent():
    # Each job fits the balance on its own ...
    first = authorize(balance=D("1.00"), held=D("0.00"), cost=D("0.60"), restricted=True)
    assert first.authorized
    # ... but once the first is held, the second does not.
    second = authorize(balance=D("1.00"), held=D("0.60"), cost=D("0.60"), restricted=True)
    assert not second.authorized
    assert "0.60" in second.reason
    assert "available balance is 0.40" in second.reason


def test_held_funds_leaving_exactly_enough():
    decision = authorize(balance=D("1.00"), held=D("0.60"), cost=D("0.40"), restricted=True)
    assert decision.authorized


def test_nothing_available_denies_any_paid_job():
    decision = authorize(balance=D("0.00"), held=D("0.00"), cost=D("0.01"), restricted=True)
    assert not decision.authorized
    assert "costs 0.01" in decision.reason


def test_overdraft_allows_going_below_zero_down_to_the_limit():
    # 1.00 - 3.00 = -2.00, exactly the limit.
    decision = authorize(
        balance=D("1.00"),
        held=D("0"),
        cost=D("3.00"),
        restricted=True,
        overdraft_limit=D("2.00"),
    )
    assert decision.authorized


def test_overdraft_does_not_allow_going_beyond_the_limit():
    decision = authorize(
        balance=D("1.00"),
        held=D("0"),
        cost=D("3.01"),
        restricted=True,
        overdraft_limit=D("2.00"),
    )
    assert not decision.authorized
    assert "costs 3.01" in decision.reason
    assert "available balance is 1.00" in decision.reason


def test_overdraft_with_a_balance_already_negative_and_funds_held():
    # available = -0.50 - 0.25 = -0.75; the limit leaves 1.25 to spend.
    kwargs = {"balance": D("-0.50"), "held": D("0.25"), "restricted": True}
    limit = D("2.00")
    assert authorize(cost=D("1.25"), overdraft_limit=limit, **kwargs).authorized
    denied = authorize(cost=D("1.26"), overdraft_limit=limit, **kwargs)
    assert not denied.authorized
    assert "available balance is -0.75" in denied.reason


def test_without_overdraft_a_negative_available_balance_is_denied():
    decision = authorize(balance=D("0.10"), held=D("0.20"), cost=D("0.05"), restricted=True)
    assert not decision.authorized
    assert "available balance is -0.10" in decision.reason


@pytest.mark.parametrize(
    ("balance", "held", "cost"),
    [("0", "0", "0"), ("-100.00", "50.00", "1000.00"), ("5.00", "0", "5.01"), ("-0.01", "0", "0")],
)
def test_unrestricted_is_always_authorised(balance, held, cost):
    decision = authorize(balance=D(balance), held=D(held), cost=D(cost), restricted=False)
    assert decision == Decision(True, None)


@pytest.mark.parametrize("restricted", [True, False])
def test_negative_cost_is_refused(restricted):
    with pytest.raises(ValueError, match="less than nothing"):
        authorize(balance=D("5.00"), held=D("0"), cost=D("-0.01"), restricted=restricted)


def test_personal_account_name():
    assert personal_account("alice") == "personal:alice"


money = st.decimals(min_value=-1000, max_value=1000, places=2, allow_nan=False)
non_negative = st.decimals(min_value=0, max_value=1000, places=2, allow_nan=False)


@given(balance=money, held=non_negative, cost=non_negative, overdraft=non_negative)
def test_restricted_rule(balance, held, cost, overdraft):
    decision = authorize(
        balance=balance, held=held, cost=cost, restricted=True, overdraft_limit=overdraft
    )
    expected = balance - held - cost >= -overdraft
    assert decision.authorized == expected
    if decision.authorized:
        assert decision.reason is None
    else:
        assert f"costs {cost}" in decision.reason
        assert f"available balance is {balance - held}" in decision.reason


@given(balance=money, held=non_negative, cost=non_negative, overdraft=non_negative)
def test_unrestricted_rule(balance, held, cost, overdraft):
    decision = authorize(
        balance=balance, held=held, cost=cost, restricted=False, overdraft_limit=overdraft
    )
    assert decision == Decision(True)


@given(balance=money, held=non_negative, cost=non_negative)
def test_a_cheaper_job_is_authorised_whenever_a_dearer_one_is(balance, held, cost):
    cheaper = cost - D("0.01") if cost >= D("0.01") else D(0)
    if authorize(balance=balance, held=held, cost=cost, restricted=True).authorized:
        assert authorize(balance=balance, held=held, cost=cheaper, restricted=True).authorized


def test_a_negative_overdraft_limit_is_refused():
    with pytest.raises(ValueError):
        authorize(
            balance=Decimal(5),
            held=Decimal(0),
            cost=Decimal(1),
            restricted=True,
            overdraft_limit=Decimal(-1),
        )


def test_a_job_always_credits_the_same_revenue_account_and_jobs_spread_over_all():
    from platen.account_ledger.domain import REVENUE_SHARDS, revenue_account

    job = uuid.UUID("0b5a4c1e-2f3d-4e5f-8a9b-0c1d2e3f4a5b")
    assert revenue_account(job) == revenue_account(uuid.UUID(str(job)))
    seen = Counter(revenue_account(uuid.UUID(int=i)) for i in range(1600))
    assert set(seen) == {f"system:revenue:{i:02d}" for i in range(REVENUE_SHARDS)}
    assert max(seen.values()) < 2 * min(seen.values())  # sequential ids spread too
