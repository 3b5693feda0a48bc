"""Print policies: denials with a reason, confirmations, suggestions."""

from __future__ import annotations

from decimal import Decimal

import pytest

from platen.events.printers import CostModel, Policy
from platen.pricing.domain import Job, Sides, assess

D = Decimal
MODEL = CostModel(page=D("0.10"), color_page=D("0.50"), duplex_discount=D("20"))


def job(gray: int, color: int = 0, copies: int = 1, duplex: bool = False) -> Job:
    groups = [Sides("A4", False, gray)] if gray else []
    if color:
        groups.append(Sides("A4", True, color))
    return Job(tuple(groups), copies, duplex)


def verdict(job: Job, *policies: Policy, groups: frozenset[str] = frozenset()):
    scoped = [(f"policy {i}", p) for i, p in enumerate(policies)]
    return assess(MODEL, scoped, job, printer="lab-1", user_groups=groups).verdict


def test_no_policy_says_nothing():
    v = verdict(job(200))
    assert (v.denied, v.confirm, v.messages) == (None, False, ())


def test_a_job_over_the_page_limit_is_denied_with_a_reason():
    v = verdict(job(200), Policy(max_pages=100))
    assert v.denied == (
        "this job prints 200 pages and lab-1 takes at most 100 pages a job (policy 0); "
        "split it or print it elsewhere"
    )
    assert verdict(job(100), Policy(max_pages=100)).denied is None


def test_the_page_limit_counts_every_copy():
    assert verdict(job(40, copies=3), Policy(max_pages=100)).denied is not None
    assert verdict(job(50, copies=2), Policy(max_pages=100)).denied is None


def test_colour_is_only_for_the_listed_groups():
    policy = Policy(color_groups=["staff"])
    denied = verdict(job(3, color=1), policy, groups=frozenset({"students"}))
    assert denied.denied is not None
    assert "colour printing on lab-1 is only for the groups: staff" in denied.denied
    assert verdict(job(3, color=1), policy, groups=frozenset({"staff"})).denied is None
    # A grayscale job is fine for anyone.
    assert verdict(job(3), policy).denied is None


def test_an_empty_colour_group_list_allows_colour_to_nobody():
    assert "only for the groups: nobody" in verdict(job(0, 1), Policy(color_groups=[])).denied


def test_confirmation_above_a_cost():
    # 20 x 0.10 = 2.00: not more than 2.00. 21 sides = 2.10: more.
    policy = Policy(confirm_above_cost=D("2"))
    assert verdict(job(20), policy).confirm is False
    v = verdict(job(21), policy)
    assert v.confirm is True
    assert v.messages == ("This job costs 2.10, more than 2.00: please confirm it.",)


def test_confirmation_above_a_page_count():
    v = verdict(job(30, copies=2), Policy(confirm_above_pages=50))
    assert v.confirm is True
    assert v.messages == ("This job prints 60 pages, more than 50: please confirm it.",)


def test_suggestions_say_what_the_job_would_cost():
    v = verdict(job(9, color=1), Policy(suggest_duplex=True, suggest_grayscale=True))
    assert (v.denied, v.confirm) == (None, False)
    # 9 x 0.10 + 0.50 = 1.40; double-sided 20 % off = 1.12; grayscale 10 x 0.10 = 1.00.
    assert v.messages == (
        "Print double-sided to save paper (it would cost 1.12).",
        "Print in grayscale to save colour toner (it would cost 1.00).",
    )
    # Nothing to suggest to a one-sided grayscale job.
    assert verdict(job(1), Policy(suggest_duplex=True, suggest_grayscale=True)).messages == ()


def test_the_first_denial_wins_and_messages_are_kept():
    v = verdict(
        job(150, color=1),
        Policy(max_pages=100, message="Lab printers are for coursework."),
        Policy(color_groups=["staff"], message="Lab printers are for coursework."),
    )
    assert v.denied.startswith("this job prints 151 pages")
    assert v.confirm is False
    assert v.messages == ("Lab printers are for coursework.",)


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"max_pages": 0}, "greater than or equal to 1"),
        ({"confirm_above_cost": "-1"}, "cannot be negative"),
        ({"confirm_above_pages": -1}, "greater than or equal to 0"),
        ({"message": ""}, "at least 1 character"),
    ],
)
def test_invalid_policies_are_refused(fields, error):
    with pytest.raises(ValueError, match=error):
        Policy.model_validate(fields)
