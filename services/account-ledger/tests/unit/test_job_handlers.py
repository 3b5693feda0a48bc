"""The job handlers as the service runs them, with an in-memory store and no broker:
priced -> held, charged at once or asked; printed -> posted; cancelled or failed ->
voided; every message again changes nothing more."""

from __future__ import annotations

import inspect
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

from platen.account_ledger.domain import HoldState, InputState
from platen.account_ledger.handlers import accounts, jobs, users
from platen.account_ledger.store import Store
from platen.events.accounts import (
    AddAccount,
    AddUser,
    AnswerJob,
    BalanceChanged,
    BalanceLow,
    GrantAccess,
    JobCharged,
    JobInputRequired,
    PinLocked,
    SetAccount,
    SetUser,
)
from platen.events.jobs import (
    JobAuthorized,
    JobCancelled,
    JobDenied,
    JobFailed,
    JobPriced,
    JobUnconfirmed,
)
from platen.events.system import ErrorReply
from platen.messaging.fakes import FakeContext

from ..builders import priced, printed
from .fakes import FakeStore


@pytest.fixture
def ctx() -> FakeContext:
    return FakeContext(store=FakeStore(), producer="account-ledger")


async def add_user(ctx, login: str, balance: str = "0", **settings) -> None:
    groups = settings.pop("groups", [])
    await users.on_add_user(ctx, AddUser(login=login, initial_balance=D(balance), groups=groups))
    if settings:
        reply = await users.on_set_user(ctx, SetUser(login=login, **settings))
        assert not isinstance(reply, ErrorReply), reply
    # What setting up said and locked is not what the tests are about.
    ctx.emitted.clear()
    ctx.store.locks.clear()


def ended(kind, job: JobPriced):
    return kind(
        job_id=job.job_id,
        user=job.user,
        printer=job.printer,
        document_name=job.document_name,
        reason="x",
    )


def test_the_fake_store_has_the_methods_of_the_store_with_the_same_parameters():
    def methods(cls):
        return {
            name: list(inspect.signature(f).parameters)
            for name, f in inspect.getmembers(cls, inspect.isfunction)
            if not name.startswith("_")
        }

    assert methods(FakeStore) == methods(Store)


# ----------------------------------------------------------------- priced


async def test_an_auto_user_with_funds_is_held_and_authorised_at_once(ctx):
    await add_user(ctx, "alice", "5.00")
    job = priced()
    await jobs.on_job_priced(ctx, job)
    [authorized] = ctx.messages(JobAuthorized)
    assert (authorized.job_id, authorized.account, authorized.amount) == (
        job.job_id,
        "personal:alice",
        D("0.30"),
    )
    hold = ctx.store.holds[job.job_id]
    assert (hold.state, hold.amount, hold.account_id) == (
        HoldState.PENDING,
        D("0.30"),
        "personal:alice",
    )
    [changed] = ctx.messages(BalanceChanged)
    assert (changed.balance, changed.available) == (D("5.00"), D("4.70"))
    # The job's events are taken one at a time, its user is kept from being deleted
    # meanwhile, and the account is locked before its funds are read.
    assert ctx.store.locks[:3] == [
        ("job", job.job_id),
        ("user shared", "alice"),
        ("account", "personal:alice"),
    ]
    assert ctx.emitted[0].correlation_id == str(job.job_id)


async def test_a_job_the_account_cannot_pay_is_denied_and_holds_nothing(ctx):
    await add_user(ctx, "bob", "0.50")
    first, second = priced("bob"), priced("bob")
    await jobs.on_job_priced(ctx, first)
    await jobs.on_job_priced(ctx, second)
    assert [a.job_id for a in ctx.messages(JobAuthorized)] == [first.job_id]
    [denied] = ctx.messages(JobDenied)
    assert (denied.job_id, denied.denied_by) == (second.job_id, "account-ledger")
    assert denied.reason == (
        "insufficient credit: this job costs 0.30, your available balance is 0.20"
    )
    assert second.job_id not in ctx.store.holds


async def test_unknown_and_disabled_users_are_denied(ctx):
    await add_user(ctx, "ivy", "5.00", enabled=False)
    await jobs.on_job_priced(ctx, priced("nobody"))
    await jobs.on_job_priced(ctx, priced("ivy"))
    assert [d.reason for d in ctx.messages(JobDenied)] == [
        "user 'nobody' has no account",
        "your account is disabled: ask an administrator",
    ]
    assert ctx.store.holds == {}


async def test_the_same_price_twice_holds_once(ctx):
    await add_user(ctx, "alice", "5.00")
    job = priced()
    await jobs.on_job_priced(ctx, job)
    await jobs.on_job_priced(ctx, job)
    assert len(ctx.messages(JobAuthorized)) == 1
    assert await ctx.store.held("personal:alice") == D("0.30")


async def test_a_price_after_the_cancellation_holds_nothing_and_asks_nothing(ctx):
    await add_user(ctx, "alice", "5.00")
    job = priced()
    await jobs.on_job_not_printed(ctx, ended(JobCancelled, job))
    await jobs.on_job_priced(ctx, job)
    assert ctx.store.holds == {} and ctx.store.questions == {}
    assert ctx.emitted == []


async def test_a_confirming_user_is_asked_and_nothing_is_held_until_they_answer(ctx):
    await add_user(ctx, "ivy", "5.00", account_selection="confirm")
    job = priced("ivy")
    await jobs.on_job_priced(ctx, job)
    [ask] = ctx.messages(JobInputRequired)
    assert (ask.kind, ask.cost, [o.account for o in ask.accounts]) == (
        "confirm",
        D("0.30"),
        ["personal:ivy"],
    )
    assert ask.allow_pin is False
    assert ctx.store.questions[job.job_id].state is InputState.OPEN
    assert ctx.store.holds == {} and ctx.messages(JobAuthorized) == []

    outcome = await jobs.on_answer(ctx, AnswerJob(job_id=job.job_id, user="ivy", action="print"))
    assert (outcome.outcome, outcome.account, outcome.amount) == (
        "authorized",
        "personal:ivy",
        D("0.30"),
    )
    assert ctx.store.questions[job.job_id].state is InputState.ANSWERED
    assert ctx.store.holds[job.job_id].pending
    again = await jobs.on_answer(ctx, AnswerJob(job_id=job.job_id, user="ivy", action="print"))
    assert isinstance(again, ErrorReply) and again.error == "this job has been answered already"
    assert len(ctx.messages(JobAuthorized)) == 1


async def test_a_policy_asks_an_auto_user_to_confirm_with_its_messages(ctx):
    await add_user(ctx, "ivy", "5.00")
    job = priced("ivy", confirm=True, messages=["costly"], color_sides=1, grayscale_sides=2)
    await jobs.on_job_priced(ctx, job)
    [ask] = ctx.messages(JobInputRequired)
    assert (ask.kind, ask.messages, ask.color_sides, ask.grayscale_sides) == (
        "confirm",
        ["costly"],
        1,
        2,
    )


async def test_choosing_lists_the_usable_granted_accounts_and_pays_with_the_chosen(ctx):
    for name, kw in [("math", {}), ("art", {}), ("old", {"enabled": False})]:
        await accounts.on_add_account(ctx, AddAccount(name=name, restricted=False, **kw))
    await accounts.on_add_account(ctx, AddAccount(name="secret", pin="482913"))
    for name in ["math", "old"]:
        await accounts.on_grant(ctx, GrantAccess(account=name, groups=["maths"]))
    await add_user(ctx, "jo", "1.00", groups=["maths"], account_selection="choose")
    job = priced("jo")
    await jobs.on_job_priced(ctx, job)
    [ask] = ctx.messages(JobInputRequired)
    assert [o.account for o in ask.accounts] == ["personal:jo", "shared:math"]
    assert (ask.kind, ask.allow_pin) == ("choose_account", True)
    refused = await jobs.on_answer(
        ctx, AnswerJob(job_id=job.job_id, user="jo", action="print", account="art")
    )
    assert isinstance(refused, ErrorReply) and refused.error == "you may not charge shared:art"
    assert ctx.store.questions[job.job_id].state is InputState.OPEN  # still answerable
    ok = await jobs.on_answer(
        ctx,
        AnswerJob(job_id=job.job_id, user="jo", action="print", account="math", comment="notes"),
    )
    assert (ok.outcome, ok.account) == ("authorized", "shared:math")
    assert ctx.store.holds[job.job_id].comment == "notes"


async def test_wrong_pins_are_counted_and_lock_pin_entry(ctx):
    await accounts.on_add_account(ctx, AddAccount(name="secret", pin="482913", restricted=False))
    await add_user(ctx, "kim", "1.00", account_selection="choose")
    job = priced("kim")
    await jobs.on_job_priced(ctx, job)

    def answer(pin: str) -> AnswerJob:
        return AnswerJob(job_id=job.job_id, user="kim", action="print", account="secret", pin=pin)

    # Four wrong guesses a minute ago (each PIN check is a slow scrypt), then a fifth.
    ctx.store.failures = [("kim", "shared:secret", datetime.now(UTC) - timedelta(minutes=1))] * 4
    assert (await jobs.on_answer(ctx, answer("4444"))).error == "wrong PIN"
    assert len(ctx.store.failures) == 5
    locked = await jobs.on_answer(ctx, answer("482913"))
    assert "too many wrong PINs" in locked.error
    assert ("user", "kim") in ctx.store.locks  # one PIN check per user at a time
    ctx.store.failures = [(w, a, at - timedelta(minutes=16)) for w, a, at in ctx.store.failures]
    ok = await jobs.on_answer(ctx, answer("482913"))
    assert (ok.outcome, ok.account) == ("authorized", "shared:secret")  # no grant needed


async def test_users_guessing_one_accounts_pin_together_lock_it_and_an_admin_is_told(ctx):
    await accounts.on_add_account(ctx, AddAccount(name="secret", pin="482913", restricted=False))
    logins = ["u1", "u2", "u3"]
    waiting = {}
    for login in [*logins, "kim"]:
        await add_user(ctx, login, "1.00", account_selection="choose")
        waiting[login] = priced(login)
        await jobs.on_job_priced(ctx, waiting[login])

    def answer(login: str, pin: str) -> AnswerJob:
        job_id = waiting[login].job_id
        return AnswerJob(job_id=job_id, user=login, action="print", account="secret", pin=pin)

    # Nine wrong guesses a minute ago, three per user: no user reached their own limit.
    earlier = datetime.now(UTC) - timedelta(minutes=1)
    ctx.store.failures = [(u, "shared:secret", earlier) for u in logins for _ in range(3)]
    assert (await jobs.on_answer(ctx, answer("u1", "111000"))).error == "wrong PIN"  # tenth
    assert ("pin", "shared:secret") in ctx.store.locks  # one check per account at a time
    [locked] = ctx.messages(PinLocked)
    assert (locked.account, locked.user, locked.scope, locked.failures) == (
        "shared:secret",
        "u1",
        "account",
        10,
    )
    # Now nobody gets in by PIN, not even with the right one and no failure of their own.
    refused = await jobs.on_answer(ctx, answer("kim", "482913"))
    assert refused.error.startswith("too many wrong PINs for this account")
    assert len(ctx.store.failures) == 10 and len(ctx.messages(PinLocked)) == 1


async def test_a_weak_pin_is_refused_when_set_and_nothing_changes(ctx):
    refused = await accounts.on_add_account(ctx, AddAccount(name="lab", pin="1234"))
    assert refused.error == "a PIN needs at least 6 characters"
    assert "shared:lab" not in ctx.store.accounts
    await accounts.on_add_account(ctx, AddAccount(name="lab", pin="482913"))
    before = ctx.store.accounts["shared:lab"].pin_hash
    weak = await accounts.on_set_account(ctx, SetAccount(account="lab", pin="222222"))
    assert weak.error == "a PIN may not be one character repeated"
    assert ctx.store.accounts["shared:lab"].pin_hash == before


async def test_answers_from_someone_else_or_too_late_are_refused(ctx):
    await add_user(ctx, "ivy", "5.00", account_selection="confirm")
    await add_user(ctx, "mal", "5.00")
    job = priced("ivy")
    await jobs.on_job_priced(ctx, job)
    theft = await jobs.on_answer(ctx, AnswerJob(job_id=job.job_id, user="mal", action="print"))
    assert theft.error == "this job belongs to someone else"
    unknown = await jobs.on_answer(ctx, AnswerJob(job_id=uuid.uuid4(), user="ivy", action="print"))
    assert unknown.error == "this job is not waiting for an answer"
    ctx.store.questions[job.job_id].expires_at = datetime.now(UTC) - timedelta(seconds=1)
    late = await jobs.on_answer(ctx, AnswerJob(job_id=job.job_id, user="ivy", action="print"))
    assert "too late" in late.error
    assert ctx.store.questions[job.job_id].state is InputState.CANCELLED
    [cancelled] = ctx.messages(JobCancelled)
    assert cancelled.reason == "no answer before the job's deadline"
    assert ctx.messages(JobAuthorized) == []


async def test_a_cancel_answer_cancels_the_job(ctx):
    await add_user(ctx, "ivy", "5.00", account_selection="confirm")
    job = priced("ivy")
    await jobs.on_job_priced(ctx, job)
    outcome = await jobs.on_answer(ctx, AnswerJob(job_id=job.job_id, user="ivy", action="cancel"))
    assert outcome.outcome == "cancelled"
    [cancelled] = ctx.messages(JobCancelled)
    assert (cancelled.job_id, cancelled.reason) == (job.job_id, "cancelled by ivy")
    assert ctx.store.questions[job.job_id].state is InputState.CANCELLED


async def test_a_confirmed_job_without_funds_is_denied(ctx):
    await add_user(ctx, "ivy", "0.10", account_selection="confirm")
    job = priced("ivy")
    await jobs.on_job_priced(ctx, job)
    outcome = await jobs.on_answer(ctx, AnswerJob(job_id=job.job_id, user="ivy", action="print"))
    assert (outcome.outcome, outcome.account) == ("denied", "personal:ivy")
    [denied] = ctx.messages(JobDenied)
    assert denied.reason == outcome.reason and "insufficient credit" in denied.reason
    assert ctx.store.holds == {}


# ----------------------------------------------------------------- printed


@pytest.mark.parametrize("outcome", ["printed", "unconfirmed"])
async def test_a_printed_or_unconfirmed_job_is_charged_once(ctx, outcome):
    await add_user(ctx, "alice", "5.00")
    job = priced()
    await jobs.on_job_priced(ctx, job)
    ctx.emitted.clear()
    first = printed(job) if outcome == "printed" else ended(JobUnconfirmed, job)
    await jobs.on_job_printed(ctx, first)
    await jobs.on_job_printed(ctx, first)  # redelivered
    await jobs.on_job_printed(ctx, printed(job))  # the outcome, late
    [charged] = ctx.messages(JobCharged)
    assert (charged.job_id, charged.account, charged.amount, charged.balance) == (
        job.job_id,
        "personal:alice",
        D("0.30"),
        D("4.70"),
    )
    assert ctx.store.holds[job.job_id].state is HoldState.POSTED
    [tx] = [t for t in ctx.store.transactions if t.kind == "charge"]
    assert (tx.op_key, tx.created_by, tx.description) == (
        f"job:{job.job_id}:charge",
        "alice",
        "doc.pdf on lab-1",
    )
    assert (await ctx.store.balance("personal:alice"), await ctx.store.held("personal:alice")) == (
        D("4.70"),
        D("0.00"),
    )
    assert await ctx.store.verify() == []


async def test_a_free_job_is_posted_and_announced_with_no_money_moved(ctx):
    await add_user(ctx, "alice", "5.00")
    job = priced(cost="0.00")
    await jobs.on_job_priced(ctx, job)
    await jobs.on_job_printed(ctx, printed(job))
    [charged] = ctx.messages(JobCharged)
    assert (charged.amount, charged.balance) == (D("0.00"), D("5.00"))
    assert ctx.store.holds[job.job_id].state is HoldState.POSTED
    assert [t.kind for t in ctx.store.transactions] == ["top-up"]


async def test_a_printed_job_never_priced_charges_nothing(ctx):
    await add_user(ctx, "alice", "5.00")
    await jobs.on_job_printed(ctx, printed(priced()))
    assert ctx.emitted == []


async def test_the_charge_that_crosses_the_threshold_warns_once(ctx):
    await add_user(ctx, "quinn", "1.50", low_balance_threshold=D("1.00"))
    for _ in range(3):  # 1.20, 0.90 (crosses), 0.60
        job = priced("quinn")
        await jobs.on_job_priced(ctx, job)
        await jobs.on_job_printed(ctx, printed(job))
    [low] = ctx.messages(BalanceLow)
    assert (low.available, low.threshold) == (D("0.90"), D("1.00"))


# ----------------------------------------------------------------- cancelled or failed


@pytest.mark.parametrize("outcome", [JobFailed, JobCancelled])
async def test_a_failed_or_cancelled_job_is_released_and_never_charged(ctx, outcome):
    await add_user(ctx, "alice", "5.00")
    job = priced()
    await jobs.on_job_priced(ctx, job)
    ctx.emitted.clear()
    await jobs.on_job_not_printed(ctx, ended(outcome, job))
    assert ctx.store.holds[job.job_id].state is HoldState.VOIDED
    [changed] = ctx.messages(BalanceChanged)
    assert (changed.balance, changed.available) == (D("5.00"), D("5.00"))
    await jobs.on_job_not_printed(ctx, ended(outcome, job))  # redelivered: nothing more
    await jobs.on_job_printed(ctx, printed(job))  # a late "printed" is not believed
    assert len(ctx.emitted) == 1
    assert ctx.messages(JobCharged) == []
    assert [t.kind for t in ctx.store.transactions] == ["top-up"]
    assert job.job_id in ctx.store.closed


async def test_a_cancelled_job_that_waited_for_its_user_cannot_be_answered(ctx):
    await add_user(ctx, "ivy", "5.00", account_selection="confirm")
    job = priced("ivy")
    await jobs.on_job_priced(ctx, job)
    await jobs.on_job_not_printed(ctx, ended(JobCancelled, job))
    assert ctx.store.questions[job.job_id].state is InputState.CANCELLED
    answer = await jobs.on_answer(ctx, AnswerJob(job_id=job.job_id, user="ivy", action="print"))
    assert answer.error == "this job was cancelled and will not print"
    assert ctx.store.holds == {}


async def test_a_failure_after_the_charge_leaves_the_charge(ctx):
    await add_user(ctx, "alice", "5.00")
    job = priced()
    await jobs.on_job_priced(ctx, job)
    await jobs.on_job_printed(ctx, printed(job))
    await jobs.on_job_not_printed(ctx, ended(JobFailed, job))
    assert ctx.store.holds[job.job_id].state is HoldState.POSTED
    assert await ctx.store.balance("personal:alice") == D("4.70")


async def test_codes_and_visible_balances_reach_the_account_options(ctx):
    await accounts.on_add_account(
        ctx, AddAccount(name="math", restricted=False, code="M-101", balance_visible=True)
    )
    await accounts.on_add_account(ctx, AddAccount(name="art", restricted=False, code="A7"))
    ctx.store.accounts["shared:math"].balance = D("12.50")
    ctx.store.accounts["shared:art"].balance = D("40.00")
    for name in ["math", "art"]:
        await accounts.on_grant(ctx, GrantAccess(account=name, users=["jo"]))
    await add_user(ctx, "jo", "3.00", account_selection="choose")
    job = priced("jo")
    await jobs.on_job_priced(ctx, job)
    [ask] = ctx.messages(JobInputRequired)
    shown = {o.account: (o.code, o.available) for o in ask.accounts}
    # Her own balance she sees; a shared one only where the admin made it visible.
    assert shown == {
        "personal:jo": (None, D("3.00")),
        "shared:art": ("A7", None),
        "shared:math": ("M-101", D("12.50")),
    }
    # A code names one account, in any case; the answer may name the account by it, and
    # the ledger checks access as for any other name.
    taken = await accounts.on_set_account(ctx, SetAccount(account="art", code="m-101"))
    assert isinstance(taken, ErrorReply) and "already used by shared:math" in taken.error
    assert ctx.store.accounts["shared:art"].code == "A7"
    ok = await jobs.on_answer(
        ctx, AnswerJob(job_id=job.job_id, user="jo", action="print", account="m-101")
    )
    assert (ok.outcome, ok.account) == ("authorized", "shared:math")


async def test_a_code_is_changed_cleared_and_the_balance_hidden_again(ctx):
    await accounts.on_add_account(ctx, AddAccount(name="lab", code="L1", balance_visible=True))
    view = await accounts.on_set_account(ctx, SetAccount(account="L1", code="L2"))
    assert (view.id, view.code, view.balance_visible) == ("shared:lab", "L2", True)
    both = await accounts.on_set_account(ctx, SetAccount(account="lab", code="L3", clear_code=True))
    assert isinstance(both, ErrorReply) and ctx.store.accounts["shared:lab"].code == "L2"
    view = await accounts.on_set_account(
        ctx, SetAccount(account="lab", clear_code=True, balance_visible=False)
    )
    assert (view.code, view.balance_visible) == (None, False)
    assert ctx.store.accounts["shared:lab"].available_shown_to_users is None
