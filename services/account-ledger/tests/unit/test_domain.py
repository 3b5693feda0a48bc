"""The ledger's domain on its own: holds, questions, accounts and when a job is charged."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

from platen.account_ledger import domain
from platen.account_ledger.domain import (
    Account,
    Ask,
    ChargeTo,
    Deny,
    Hold,
    HoldState,
    IllegalTransition,
    InputState,
    Job,
    Question,
    User,
)

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def job(cost: str = "0.30", **kw) -> Job:
    fields = {
        "job_id": uuid.uuid4(),
        "user": "alice",
        "printer": "lab-1",
        "document_name": "doc.pdf",
        "sides": 3,
        "copies": 1,
        "cost": D(cost),
    }
    return Job(**(fields | kw))


def hold(amount: str = "0.30", **kw) -> Hold:
    fields = {
        "job_id": uuid.uuid4(),
        "account_id": "personal:alice",
        "user": "alice",
        "base_cost": D(amount),
        "charge_rate": D(1),
        "amount": D(amount),
        "printer": "lab-1",
        "document_name": "doc.pdf",
        "sides": 3,
        "copies": 1,
    }
    return Hold(**(fields | kw))


def question(**kw) -> Question:
    fields = {
        "job_id": uuid.uuid4(),
        "user": "alice",
        "kind": "confirm",
        "printer": "lab-1",
        "document_name": "doc.pdf",
        "sides": 3,
        "copies": 1,
        "cost": D("0.30"),
        "expires_at": NOW + timedelta(minutes=10),
    }
    return Question(**(fields | kw))


def personal(login: str = "alice", balance: str = "5.00", **kw) -> Account:
    return Account(
        id=f"personal:{login}", kind="personal", name=login, owner=login, balance=D(balance), **kw
    )


def shared(path: str, **kw) -> Account:
    return Account(id=f"shared:{path}", kind="shared", name=path, **kw)


# ----------------------------------------------------------------- a hold's lifecycle


def test_a_hold_starts_pending_and_is_posted_once():
    h = hold()
    assert h.state is HoldState.PENDING and h.pending
    assert h.post() is True
    assert h.state is HoldState.POSTED and not h.pending
    assert h.post() is False  # again: the same outcome, nothing more
    assert h.state is HoldState.POSTED


def test_a_hold_is_voided_once():
    h = hold()
    assert h.void() is True
    assert h.state is HoldState.VOIDED
    assert h.void() is False
    assert h.state is HoldState.VOIDED


def test_a_posted_hold_cannot_be_voided_and_a_voided_one_cannot_be_posted():
    posted, voided = hold(), hold()
    posted.post()
    voided.void()
    with pytest.raises(IllegalTransition, match="posted"):
        posted.void()
    with pytest.raises(IllegalTransition, match="voided"):
        voided.post()
    assert (posted.state, voided.state) == (HoldState.POSTED, HoldState.VOIDED)


def test_hold_states_are_the_strings_the_database_keeps():
    assert [s.value for s in HoldState] == ["pending", "posted", "voided"]


# ----------------------------------------------------------------- accounts


def test_available_counts_held_funds_as_spent():
    acc = personal(balance="1.00", held=D("0.60"))
    assert acc.available == D("0.40")
    assert acc.can_pay(D("0.40")).authorized
    decision = acc.can_pay(D("0.41"))
    assert not decision.authorized
    assert decision.reason == (
        "insufficient credit: this job costs 0.41, your available balance is 0.40"
    )


def test_an_unrestricted_account_pays_anything_and_an_overdraft_stops_at_its_limit():
    assert personal(balance="0", restricted=False).can_pay(D("99.00")).authorized
    acc = personal(balance="1.00", overdraft_limit=D("2.00"))
    assert acc.can_pay(D("3.00")).authorized
    assert not acc.can_pay(D("3.01")).authorized


def test_a_disabled_parent_disables_its_children():
    chem = shared("chem", enabled=False)
    lab = shared("chem/lab", parent="shared:chem", parents=[chem])
    assert not lab.usable
    chem.enabled = True
    assert lab.usable
    assert not shared("x", enabled=False).usable


def test_the_charge_rate_is_inherited_from_the_nearest_parent_that_sets_one():
    clients = shared("clients", charge_rate=D("1.5"))
    acme = shared("clients/acme", parent="shared:clients", parents=[clients])
    assert acme.effective_charge_rate == D("1.5")
    acme.charge_rate = D("2")
    assert acme.effective_charge_rate == D("2")
    assert personal().effective_charge_rate == D(1)


def test_who_may_charge_an_account():
    assert personal("alice").may_be_charged_by("alice", [])
    assert not personal("bob").may_be_charged_by("alice", [])
    chem = shared("chem", grants={("user", "fay")})
    lab = shared("chem/lab", parents=[chem], grants={("group", "staff")})
    assert lab.may_be_charged_by("fay", [])  # granted on its parent
    assert lab.may_be_charged_by("gus", ["staff"])
    assert not lab.may_be_charged_by("gus", ["students"])
    assert not lab.may_be_charged_by("staff", [])  # a group's name is not a user
    assert not chem.may_be_charged_by("gus", ["staff"])  # a grant does not reach up
    revenue = Account(id="system:revenue", kind="system", name="revenue", grants={("user", "x")})
    assert not revenue.may_be_charged_by("x", [])


def test_a_pin_opens_only_a_shared_account_with_that_pin():
    pin_hash = domain.hash_pin("4321")  # scrypt: slow on purpose, so made once
    secret = shared("secret", pin_hash=pin_hash)
    assert secret.opened_by("4321")
    assert not secret.opened_by("1234")
    assert not shared("open").opened_by("4321")
    assert not personal(pin_hash=pin_hash).opened_by("4321")
    assert "4321" not in (secret.pin_hash or "")


# ----------------------------------------------------------------- step 1: route


def test_a_user_without_an_account_or_disabled_is_denied():
    assert domain.route(job(), None) == Deny("user 'alice' has no account")
    assert domain.route(job(), User("alice", enabled=False)) == Deny(
        "your account is disabled: ask an administrator"
    )


def test_an_auto_user_is_charged_to_their_default_account_without_a_question():
    assert domain.route(job(), User("alice")) == ChargeTo("personal:alice")
    assert domain.route(job(), User("alice", default_account="shared:lab")) == ChargeTo(
        "shared:lab"
    )


def test_a_printer_policy_asks_an_auto_user_to_confirm():
    assert domain.route(job(confirm=True), User("alice")) == Ask("confirm", "personal:alice")


@pytest.mark.parametrize(
    ("selection", "kind"), [("confirm", "confirm"), ("choose", "choose_account")]
)
def test_other_users_are_asked(selection, kind):
    user = User("alice", account_selection=selection, default_account="shared:lab")
    assert domain.route(job(), user) == Ask(kind, "shared:lab")


# ----------------------------------------------------------------- step 2: hold_for


def test_a_hold_reserves_the_cost_at_the_accounts_rate_rounded_half_up():
    clients = shared("clients", charge_rate=D("1.5"), grants={("user", "alice")})
    acme = shared("clients/acme", parent="shared:clients", parents=[clients], restricted=False)
    j = job("0.31")
    h = domain.hold_for(j, "alice", acme, groups=[], comment="notes")
    assert isinstance(h, Hold)
    assert (h.job_id, h.account_id, h.user, h.comment) == (
        j.job_id,
        "shared:clients/acme",
        "alice",
        "notes",
    )
    assert (h.base_cost, h.charge_rate, h.amount, h.state) == (
        D("0.31"),
        D("1.5"),
        D("0.47"),  # 0.465, half up
        HoldState.PENDING,
    )


def test_a_hold_is_refused_on_a_disabled_account_or_without_access_or_funds():
    lab = shared("lab", enabled=False, grants={("user", "alice")})
    assert domain.hold_for(job(), "alice", lab, groups=[]) == Deny("account lab is disabled")
    lab.enabled = True
    assert domain.hold_for(job(), "bob", lab, groups=[]) == Deny(
        "you may no longer charge account lab"
    )
    poor = personal(balance="0.20")
    assert domain.hold_for(job("0.30"), "alice", poor, groups=[]) == Deny(
        "insufficient credit: this job costs 0.30, your available balance is 0.20"
    )


def test_a_pin_stands_in_for_a_grant_but_not_for_funds():
    secret = shared("secret", restricted=False)
    assert isinstance(domain.hold_for(job(), "bob", secret, groups=[], by_pin=True), Hold)
    secret.restricted = True
    denied = domain.hold_for(job(), "bob", secret, groups=[], by_pin=True)
    assert isinstance(denied, Deny) and "insufficient credit" in denied.reason


# ----------------------------------------------------------------- step 3: settle


def test_printing_posts_a_pending_hold_and_charges_it_once():
    h = hold("0.30")
    settled = domain.settle(h, "doc.pdf on lab-1")
    assert settled is not None and settled.hold is h and h.state is HoldState.POSTED
    posting = settled.posting
    assert posting is not None
    assert (posting.op_key, posting.kind, posting.job_id, posting.created_by) == (
        f"job:{h.job_id}:charge",
        "charge",
        h.job_id,
        "alice",
    )
    assert posting.description == "doc.pdf on lab-1"
    assert posting.entries == {
        "personal:alice": D("-0.30"),
        domain.revenue_account(h.job_id): D("0.30"),
    }
    assert sum(posting.entries.values()) == 0
    assert domain.settle(h, "doc.pdf on lab-1") is None  # printed again: nothing more


def test_a_free_job_is_posted_with_no_money_moved():
    h = hold("0.00")
    settled = domain.settle(h, "x")
    assert settled is not None and settled.posting is None
    assert h.state is HoldState.POSTED


def test_printing_charges_nothing_without_a_pending_hold():
    assert domain.settle(None, "x") is None
    voided = hold()
    voided.void()
    assert domain.settle(voided, "x") is None  # a "printed" after a cancellation
    assert voided.state is HoldState.VOIDED


# ----------------------------------------------------------------- step 4: release


def test_a_failed_or_cancelled_job_voids_its_hold_and_cancels_its_question():
    h, q = hold(), question()
    assert domain.release(h, q) == domain.Released(hold=True, question=True)
    assert (h.state, q.state) == (HoldState.VOIDED, InputState.CANCELLED)
    assert domain.release(h, q) == domain.Released(hold=False, question=False)  # redelivered
    assert domain.release(None, None) == domain.Released(hold=False, question=False)


def test_releasing_a_charged_job_leaves_its_charge():
    h = hold()
    h.post()
    answered = question()
    answered.answer()
    assert domain.release(h, answered) == domain.Released(hold=False, question=False)
    assert (h.state, answered.state) == (HoldState.POSTED, InputState.ANSWERED)


# ----------------------------------------------------------------- questions


def test_only_its_user_answers_a_question_while_it_is_open_and_they_are_enabled():
    q = question()
    assert q.refusal("mal", enabled=True) == "this job belongs to someone else"
    assert q.refusal("alice", enabled=False) == "your account is disabled"
    assert q.refusal("alice", enabled=True) is None
    q.answer()
    assert q.refusal("alice", enabled=True) == "this job has been answered already"
    with pytest.raises(IllegalTransition):
        q.answer()
    assert q.cancel() is False  # answered: it stays answered


def test_a_cancelled_question_says_it_was_cancelled_not_answered():
    q = question()
    assert q.cancel() is True
    assert q.refusal("alice", enabled=True) == "this job was cancelled and will not print"
    assert q.refusal("mal", enabled=True) == "this job belongs to someone else"


def test_a_question_expires_at_its_deadline():
    q = question()
    assert not q.expired(q.expires_at - timedelta(microseconds=1))
    assert q.expired(q.expires_at)


def test_an_answer_is_by_pin_only_when_choosing_an_account_with_a_pin():
    choose = question(kind="choose_account")
    assert choose.by_pin("secret", "4321")
    assert not choose.by_pin(None, "4321")
    assert not choose.by_pin("secret", None)
    assert not question(kind="confirm").by_pin("secret", "4321")


# ----------------------------------------------------------------- PINs and low balance


def test_five_wrong_pins_in_the_window_lock_pin_entry_for_the_rest_of_it():
    failures = [NOW - timedelta(minutes=m) for m in (10, 8, 6, 4)]
    assert domain.pin_lockout(failures, NOW) is None
    failures.append(NOW - timedelta(minutes=1))
    assert domain.pin_lockout(failures, NOW) == "too many wrong PINs: try again in 6 minutes"
    assert domain.pin_lockout(failures, NOW + timedelta(minutes=6)) is None


def test_wrong_pins_on_one_account_by_several_users_lock_it_for_everyone():
    on_account = [NOW - timedelta(minutes=m) for m in range(9, 0, -1)]  # 9 by many users
    assert domain.pin_lock([], on_account, NOW) is None
    on_account.append(NOW)
    lock = domain.pin_lock([], on_account, NOW)
    assert lock.scope == "account" and lock.until == NOW - timedelta(minutes=9) + domain.PIN_WINDOW
    assert domain.pin_lockout([], NOW, on_account) == (
        "too many wrong PINs for this account: try again in 7 minutes"
    )
    # The user's own lock and the account's: the later one is the one that counts.
    mine = [NOW - timedelta(minutes=1)] * domain.PIN_ATTEMPTS
    assert domain.pin_lock(mine, on_account, NOW).scope == "user"


@pytest.mark.parametrize(
    ("pin", "why"),
    [
        ("4321", "at least 6"),
        ("12345", "at least 6"),
        ("000000", "one character repeated"),
        ("123456", "a run"),
        ("987654", "a run"),
        ("abcdefg", "a run"),
    ],
)
def test_a_weak_pin_may_not_be_set(pin, why):
    assert why in domain.pin_weakness(pin)


@pytest.mark.parametrize("pin", ["482913", "135790", "a7k2m9", "1234567890x"])
def test_a_pin_of_six_mixed_characters_may_be_set(pin):
    assert domain.pin_weakness(pin) is None


def test_low_balance_warns_once_per_crossing_and_rearms_on_recovery():
    threshold = D("1.00")
    assert domain.low_balance_transition(armed=True, available=D("1.00"), threshold=threshold) == (
        False,
        True,
    )
    assert domain.low_balance_transition(armed=True, available=D("0.99"), threshold=threshold) == (
        True,
        False,
    )
    assert domain.low_balance_transition(armed=False, available=D("0.50"), threshold=threshold) == (
        False,
        False,
    )


def test_a_refund_returns_at_most_what_is_left():
    assert domain.refundable(D("1.00"), D("0.40"), None) == D("0.60")
    assert domain.refundable(D("1.00"), D("0.40"), D("0.60")) == D("0.60")
    with pytest.raises(ValueError, match=r"at most 0\.60"):
        domain.refundable(D("1.00"), D("0.40"), D("0.61"))
    with pytest.raises(ValueError, match="in full"):
        domain.refundable(D("1.00"), D("1.00"), None)
