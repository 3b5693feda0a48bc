"""Every rule of the ledger, against a real PostgreSQL."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import asyncpg
import pytest

from platen.account_ledger import domain, store
from platen.account_ledger.handlers import accounts, common, jobs, money, reports, users
from platen.events.accounts import (
    AddAccount,
    AddUser,
    Adjust,
    AnswerJob,
    GrantAccess,
    Refund,
    RevokeAccess,
    SetAccount,
    SetUser,
    ShowAccount,
    ShowUser,
    Statement,
    TopUp,
    Transfer,
    VerifyLedger,
)
from platen.events.jobs import JobCancelled, JobFailed, JobPriced, JobUnconfirmed
from platen.events.system import ErrorReply
from platen.operations import retention

from ..builders import priced, printed


async def add_user(ledger, login: str, balance: str = "0", **settings):
    await ledger.run(
        users.on_add_user,
        AddUser(
            login=login,
            initial_balance=D(balance),
            restricted=settings.pop("restricted", True),
            groups=settings.pop("groups", []),
        ),
    )
    if settings:
        reply = await ledger.run(users.on_set_user, SetUser(login=login, **settings))
        assert not isinstance(reply, ErrorReply), reply


async def balance(ledger, login: str) -> D:
    return (await ledger.run(users.on_show_user, ShowUser(login=login))).balance


async def charge(ledger, user: str, cost: str) -> JobPriced:
    job = priced(user, cost)
    await ledger.run(jobs.on_job_priced, job)
    await ledger.run(jobs.on_job_printed, printed(job))
    return job


# ----------------------------------------------------------------- double entry


async def test_the_database_refuses_an_unbalanced_transaction(ledger):
    await add_user(ledger, "alice", "5.00")
    async with ledger.pool.acquire() as conn:
        with pytest.raises(asyncpg.CheckViolationError, match="unbalanced"):
            async with conn.transaction():
                tx = await conn.fetchval(
                    "INSERT INTO transactions (op_key, kind, description) "
                    "VALUES ('bad', 'adjustment', 'x') RETURNING id"
                )
                await conn.execute(
                    "INSERT INTO entries (transaction_id, account_id, amount, balance_after) "
                    "VALUES ($1, 'personal:alice', 1, 0)",
                    tx,
                )
    assert await balance(ledger, "alice") == D("5.00")


async def test_history_is_append_only(ledger):
    await add_user(ledger, "alice", "5.00")
    async with ledger.pool.acquire() as conn:
        with pytest.raises(asyncpg.RaiseError, match="append-only"):
            await conn.execute("UPDATE entries SET amount = amount * 2")
        with pytest.raises(asyncpg.RaiseError, match="append-only"):
            await conn.execute("DELETE FROM transactions")


async def test_an_entry_added_to_a_committed_transaction_is_refused(ledger):
    await add_user(ledger, "alice", "5.00")
    tx = await ledger.fetchval("SELECT id FROM transactions")
    async with ledger.pool.acquire() as conn:
        with pytest.raises(asyncpg.CheckViolationError, match=f"transaction {tx} is unbalanced"):
            await conn.execute(
                "INSERT INTO entries (transaction_id, account_id, amount, balance_after) "
                "VALUES ($1, 'personal:alice', 100, 0)",
                tx,
            )
    assert await balance(ledger, "alice") == D("5.00")
    assert await ledger.fetchval("SELECT count(*) FROM entries") == 2


@pytest.mark.parametrize("table", ["entries", "transactions CASCADE"])
async def test_history_cannot_be_truncated(ledger, table):
    await add_user(ledger, "alice", "5.00")
    # The service's own role has no right to truncate at all; its tables' owner, which
    # has, is stopped by the trigger.
    async with ledger.pool.acquire() as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(f"TRUNCATE {table}")
    async with ledger.as_owner() as conn:
        with pytest.raises(asyncpg.RaiseError, match="append-only \\(TRUNCATE"):
            await conn.execute(f"TRUNCATE {table}")
    assert await ledger.fetchval("SELECT count(*) FROM entries") == 2


# ----------------------------------------------------------------- holds


async def test_hold_then_charge_then_nothing_more(ledger):
    await add_user(ledger, "alice", "5.00")
    job = priced("alice", "0.30")
    await ledger.run(jobs.on_job_priced, job)
    view = await ledger.run(users.on_show_user, ShowUser(login="alice"))
    assert (view.balance, view.held, view.available) == (D("5.00"), D("0.30"), D("4.70"))
    assert [h.job_id for h in view.holds] == [job.job_id]
    await ledger.run(jobs.on_job_printed, printed(job))
    await ledger.run(jobs.on_job_printed, printed(job))  # again: no second charge
    view = await ledger.run(users.on_show_user, ShowUser(login="alice"))
    assert (view.balance, view.held) == (D("4.70"), D("0.00"))
    assert len(await ledger.emitted("job.charged")) == 1


@pytest.mark.parametrize("outcome", [JobFailed, JobCancelled])
async def test_failed_or_cancelled_job_is_never_charged(ledger, outcome):
    await add_user(ledger, "alice", "5.00")
    job = priced("alice", "0.30")
    await ledger.run(jobs.on_job_priced, job)
    await ledger.run(
        jobs.on_job_not_printed,
        outcome(
            job_id=job.job_id, user="alice", printer="lab-1", document_name="doc.pdf", reason="x"
        ),
    )
    await ledger.run(jobs.on_job_printed, printed(job))  # a late "printed" charges nothing
    view = await ledger.run(users.on_show_user, ShowUser(login="alice"))
    assert (view.balance, view.held) == (D("5.00"), D("0.00"))
    assert await ledger.emitted("job.charged") == []


async def test_an_unconfirmed_job_is_charged_and_its_late_printed_charges_nothing_more(ledger):
    await add_user(ledger, "alice", "5.00")
    job = priced("alice", "0.30")
    await ledger.run(jobs.on_job_priced, job)
    unconfirmed = JobUnconfirmed(
        job_id=job.job_id, user="alice", printer="lab-1", document_name="doc.pdf", reason="x"
    )
    await ledger.run(jobs.on_job_printed, unconfirmed)
    view = await ledger.run(users.on_show_user, ShowUser(login="alice"))
    assert (view.balance, view.held) == (D("4.70"), D("0.00"))
    await ledger.run(jobs.on_job_printed, printed(job))  # the outcome, late
    await ledger.run(jobs.on_job_printed, unconfirmed)  # redelivered
    view = await ledger.run(users.on_show_user, ShowUser(login="alice"))
    assert (view.balance, view.held) == (D("4.70"), D("0.00"))
    [charged] = await ledger.emitted("job.charged")
    assert (charged.job_id, charged.amount) == (job.job_id, D("0.30"))
    async with ledger.pool.acquire() as conn:
        assert await store.verify(conn) == []


async def test_two_jobs_that_each_fit_but_not_together(ledger):
    await add_user(ledger, "bob", "0.50")
    first, second = priced("bob", "0.30"), priced("bob", "0.30")
    await ledger.run(jobs.on_job_priced, first)
    await ledger.run(jobs.on_job_priced, second)
    assert [a.job_id for a in await ledger.emitted("job.authorized")] == [first.job_id]
    [denied] = await ledger.emitted("job.denied")
    assert denied.job_id == second.job_id and "insufficient credit" in denied.reason


async def test_fifty_concurrent_jobs_with_funds_for_ten(ledger):
    await add_user(ledger, "carol", "3.00")
    batch = [priced("carol", "0.30") for _ in range(50)]
    await ledger.run_all(jobs.on_job_priced, batch)
    authorized = await ledger.emitted("job.authorized")
    assert len(authorized) == 10
    assert len(await ledger.emitted("job.denied")) == 40
    ids = {a.job_id for a in authorized}
    await ledger.run_all(jobs.on_job_printed, [printed(j) for j in batch if j.job_id in ids])
    assert await balance(ledger, "carol") == D("0.00")
    lowest = await ledger.fetchval(
        "SELECT min(balance_after) FROM entries WHERE account_id = 'personal:carol'"
    )
    assert lowest >= 0  # never below the limit, at any point in the history


async def test_overdraft_limit_lets_a_user_go_that_far_below_zero(ledger):
    await add_user(ledger, "dan", "0.10", overdraft_limit=D("0.50"))
    await charge(ledger, "dan", "0.60")
    assert await balance(ledger, "dan") == D("-0.50")
    job = priced("dan", "0.01")
    await ledger.run(jobs.on_job_priced, job)
    assert (await ledger.emitted("job.denied"))[-1].job_id == job.job_id


async def test_unrestricted_user_may_go_negative(ledger):
    await add_user(ledger, "erin", "0", restricted=False)
    await charge(ledger, "erin", "2.00")
    assert await balance(ledger, "erin") == D("-2.00")


# ----------------------------------------------------------------- shared accounts


async def shared(ledger, name: str, **kw):
    reply = await ledger.run(accounts.on_add_account, AddAccount(name=name, **kw))
    assert not isinstance(reply, ErrorReply), reply
    return reply


async def test_two_hundred_concurrent_charges_to_one_shared_account(ledger):
    await shared(ledger, "physics")
    await ledger.run(accounts.on_grant, GrantAccess(account="physics", groups=["staff"]))
    await ledger.run(money.on_topup, TopUp(key="fund", account="physics", amount=D("100.00")))
    logins = [f"u{i:03d}" for i in range(200)]
    for login in logins:
        await add_user(ledger, login, groups=["staff"], default_account="physics")
    batch = [priced(login, "0.10") for login in logins]
    await ledger.run_all(jobs.on_job_priced, batch)
    assert len(await ledger.emitted("job.authorized")) == 200
    await ledger.run_all(jobs.on_job_printed, [printed(j) for j in batch])
    await ledger.run_all(jobs.on_job_printed, [printed(j) for j in batch[:50]])  # retries
    view = await ledger.run(accounts.on_show_account, ShowAccount(account="physics"))
    assert (view.balance, view.held) == (D("80.00"), D("0.00"))
    per_job = await ledger.fetch(
        "SELECT job_id, count(*) AS n FROM transactions WHERE kind = 'charge' GROUP BY job_id"
    )
    assert len(per_job) == 200 and {r["n"] for r in per_job} == {1}


async def test_access_to_shared_accounts(ledger):
    await shared(ledger, "chem")
    await shared(ledger, "lab", parent="chem")
    await ledger.run(accounts.on_grant, GrantAccess(account="chem", users=["fay"]))
    await add_user(ledger, "fay", "1.00")
    await add_user(ledger, "gus", "1.00")
    # A grant on a parent reaches its children; nobody else may choose them.
    reply = await ledger.run(users.on_set_user, SetUser(login="fay", default_account="chem/lab"))
    assert reply.default_account == "shared:chem/lab"
    refused = await ledger.run(users.on_set_user, SetUser(login="gus", default_account="chem"))
    assert isinstance(refused, ErrorReply) and "may not use" in refused.error
    # A disabled parent disables its children.
    await ledger.run(accounts.on_set_account, SetAccount(account="chem", enabled=False))
    job = priced("fay", "0.20")
    await ledger.run(jobs.on_job_priced, job)
    [denied] = await ledger.emitted("job.denied")
    assert "disabled" in denied.reason


async def test_a_restricted_shared_account_stops_at_its_overdraft_limit(ledger):
    await shared(ledger, "proj", restricted=True, overdraft_limit=D("1.00"))
    await ledger.run(accounts.on_grant, GrantAccess(account="proj", users=["hal"]))
    await add_user(ledger, "hal", "5.00", default_account="proj")
    await charge(ledger, "hal", "0.60")
    await charge(ledger, "hal", "0.40")  # exactly at the limit: allowed
    view = await ledger.run(accounts.on_show_account, ShowAccount(account="proj"))
    assert view.balance == D("-1.00")
    job = priced("hal", "0.01")
    await ledger.run(jobs.on_job_priced, job)
    [denied] = await ledger.emitted("job.denied")
    assert denied.job_id == job.job_id and "insufficient credit" in denied.reason
    assert await balance(ledger, "hal") == D("5.00")  # his own money was never touched


async def test_charge_rate_applies_when_the_shared_account_pays(ledger):
    await shared(ledger, "clients", charge_rate=D("1.5"))
    await shared(ledger, "acme", parent="clients")  # inherits 150 %
    await ledger.run(accounts.on_grant, GrantAccess(account="clients", users=["hal"]))
    await add_user(ledger, "hal", "0", default_account="clients/acme")
    await charge(ledger, "hal", "0.30")
    [charged] = await ledger.emitted("job.charged")
    assert (charged.account, charged.amount) == ("shared:clients/acme", D("0.45"))


# ----------------------------------------------------------------- asking the user


async def test_confirm_then_print(ledger):
    await add_user(ledger, "ivy", "5.00", account_selection="confirm")
    job = priced("ivy", "0.30")
    await ledger.run(jobs.on_job_priced, job)
    [ask] = await ledger.emitted("job.input_required")
    assert ask.kind == "confirm" and ask.cost == D("0.30")
    assert await ledger.emitted("job.authorized") == []
    outcome = await ledger.run(
        jobs.on_answer, AnswerJob(job_id=job.job_id, user="ivy", action="print")
    )
    assert (outcome.outcome, outcome.amount) == ("authorized", D("0.30"))
    again = await ledger.run(
        jobs.on_answer, AnswerJob(job_id=job.job_id, user="ivy", action="print")
    )
    assert isinstance(again, ErrorReply) and "answered already" in again.error
    assert len(await ledger.emitted("job.authorized")) == 1


async def test_a_policy_asks_an_auto_user_to_confirm_with_its_messages(ledger):
    await add_user(ledger, "ivy", "5.00")
    job = priced("ivy", "0.30").model_copy(
        update={"confirm": True, "messages": ["costly"], "color_sides": 1, "grayscale_sides": 2}
    )
    await ledger.run(jobs.on_job_priced, job)
    [ask] = await ledger.emitted("job.input_required")
    assert (ask.kind, ask.messages, ask.color_sides, ask.grayscale_sides) == (
        "confirm",
        ["costly"],
        1,
        2,
    )
    assert await ledger.emitted("job.authorized") == []


async def test_a_disabled_user_prints_nothing_and_cannot_answer(ledger):
    await add_user(ledger, "ivy", "5.00", account_selection="confirm")
    waiting = priced("ivy", "0.30")
    await ledger.run(jobs.on_job_priced, waiting)
    view = await ledger.run(users.on_set_user, SetUser(login="ivy", enabled=False))
    assert view.enabled is False
    [disabled] = await ledger.emitted("user.disabled")
    assert disabled.login == "ivy"
    await ledger.run(users.on_set_user, SetUser(login="ivy", enabled=False))
    assert len(await ledger.emitted("user.disabled")) == 1  # no change, no event
    answer = await ledger.run(
        jobs.on_answer, AnswerJob(job_id=waiting.job_id, user="ivy", action="print")
    )
    assert isinstance(answer, ErrorReply) and "disabled" in answer.error
    await ledger.run(jobs.on_job_priced, priced("ivy", "0.30"))
    [denied] = await ledger.emitted("job.denied")
    assert "disabled" in denied.reason
    assert await ledger.emitted("job.authorized") == []
    await ledger.run(users.on_set_user, SetUser(login="ivy", enabled=True))
    assert [e.login for e in await ledger.emitted("user.enabled")] == ["ivy"]
    assert (await ledger.run(users.on_show_user, ShowUser(login="ivy"))).enabled is True


async def test_cancel_answer_cancels_the_job(ledger):
    await add_user(ledger, "ivy", "5.00", account_selection="confirm")
    job = priced("ivy", "0.30")
    await ledger.run(jobs.on_job_priced, job)
    outcome = await ledger.run(
        jobs.on_answer, AnswerJob(job_id=job.job_id, user="ivy", action="cancel")
    )
    assert outcome.outcome == "cancelled"
    [cancelled] = await ledger.emitted("job.cancelled")
    assert cancelled.job_id == job.job_id and "cancelled by ivy" in cancelled.reason


async def test_answers_from_the_wrong_user_or_too_late_are_refused(ledger):
    await add_user(ledger, "ivy", "5.00", account_selection="confirm")
    await add_user(ledger, "mal", "5.00")
    job = priced("ivy", "0.30")
    await ledger.run(jobs.on_job_priced, job)
    theft = await ledger.run(
        jobs.on_answer, AnswerJob(job_id=job.job_id, user="mal", action="print")
    )
    assert isinstance(theft, ErrorReply) and "someone else" in theft.error
    unknown = await ledger.run(
        jobs.on_answer, AnswerJob(job_id=uuid.uuid4(), user="ivy", action="print")
    )
    assert isinstance(unknown, ErrorReply)
    async with ledger.pool.acquire() as conn:
        await conn.execute("UPDATE pending_inputs SET expires_at = now() - interval '1 s'")
    late = await ledger.run(
        jobs.on_answer, AnswerJob(job_id=job.job_id, user="ivy", action="print")
    )
    assert isinstance(late, ErrorReply) and "too late" in late.error
    assert await ledger.emitted("job.authorized") == []
    [cancelled] = await ledger.emitted("job.cancelled")
    assert "deadline" in cancelled.reason


async def test_choose_account_lists_only_what_the_user_may_use(ledger):
    await shared(ledger, "math")
    await shared(ledger, "art")
    await shared(ledger, "secret", pin="482913")
    await ledger.run(accounts.on_grant, GrantAccess(account="math", groups=["maths"]))
    await add_user(ledger, "jo", "1.00", groups=["maths"], account_selection="choose")
    job = priced("jo", "0.30")
    await ledger.run(jobs.on_job_priced, job)
    [ask] = await ledger.emitted("job.input_required")
    assert [o.account for o in ask.accounts] == ["personal:jo", "shared:math"]
    assert ask.allow_pin is True
    refused = await ledger.run(
        jobs.on_answer, AnswerJob(job_id=job.job_id, user="jo", action="print", account="art")
    )
    assert isinstance(refused, ErrorReply) and "may not charge" in refused.error
    ok = await ledger.run(
        jobs.on_answer,
        AnswerJob(
            job_id=job.job_id, user="jo", action="print", account="math", comment="lecture notes"
        ),
    )
    assert (ok.outcome, ok.account) == ("authorized", "shared:math")
    await ledger.run(jobs.on_job_printed, printed(job))
    [charged] = await ledger.emitted("job.charged")
    assert charged.account == "shared:math"


async def test_account_codes_and_visible_balances_in_the_database(ledger):
    await shared(ledger, "math", code="M-101", balance_visible=True)
    await shared(ledger, "art", code="A7")
    # The database, too, keeps a code to one account, in any case.
    with pytest.raises(asyncpg.UniqueViolationError):
        async with ledger.pool.acquire() as conn:
            await store.Store(conn).update_account("shared:art", code="m-101")
    bad = await ledger.run(accounts.on_set_account, SetAccount(account="art", code="M-101"))
    assert isinstance(bad, ErrorReply) and "already used by shared:math" in bad.error
    for name in ["math", "art"]:
        await ledger.run(accounts.on_grant, GrantAccess(account=name, users=["jo"]))
    await ledger.run(money.on_topup, TopUp(key="t1", account="math", amount=D("12.50")))
    await add_user(ledger, "jo", "1.00", account_selection="choose")
    await ledger.run(jobs.on_job_priced, priced("jo", "0.30"))
    [ask] = await ledger.emitted("job.input_required")
    shown = {o.account: (o.code, o.available) for o in ask.accounts}
    assert shown == {
        "personal:jo": (None, D("1.00")),
        "shared:art": ("A7", None),
        "shared:math": ("M-101", D("12.50")),
    }
    view = await ledger.run(accounts.on_show_account, ShowAccount(account="a7"))
    assert (view.id, view.code, view.balance_visible) == ("shared:art", "A7", False)


async def test_an_answer_for_an_account_without_funds_is_denied(ledger):
    await shared(ledger, "math", restricted=True)
    await ledger.run(accounts.on_grant, GrantAccess(account="math", users=["jo"]))
    await ledger.run(money.on_topup, TopUp(key="k", account="math", amount=D("0.20")))
    await add_user(ledger, "jo", "5.00", account_selection="choose")
    job = priced("jo", "0.30")
    await ledger.run(jobs.on_job_priced, job)
    outcome = await ledger.run(
        jobs.on_answer, AnswerJob(job_id=job.job_id, user="jo", action="print", account="math")
    )
    assert (outcome.outcome, outcome.account) == ("denied", "shared:math")
    assert outcome.reason == (
        "insufficient credit: this job costs 0.30, your available balance is 0.20"
    )
    [denied] = await ledger.emitted("job.denied")
    assert denied.job_id == job.job_id
    assert await ledger.emitted("job.authorized") == []
    math = await ledger.run(accounts.on_show_account, ShowAccount(account="math"))
    assert (math.balance, math.held) == (D("0.20"), D("0.00"))


async def test_a_confirmed_job_without_funds_is_denied(ledger):
    await add_user(ledger, "ivy", "0.10", account_selection="confirm")
    job = priced("ivy", "0.30")
    await ledger.run(jobs.on_job_priced, job)
    outcome = await ledger.run(
        jobs.on_answer, AnswerJob(job_id=job.job_id, user="ivy", action="print")
    )
    assert (outcome.outcome, outcome.account) == ("denied", "personal:ivy")
    assert "insufficient credit" in outcome.reason
    assert (await ledger.run(users.on_show_user, ShowUser(login="ivy"))).held == D("0.00")


async def test_pin_wrong_refused_and_repeated_failures_lock_out(ledger):
    await shared(ledger, "secret", pin="482913")
    await add_user(ledger, "kim", "1.00", account_selection="choose")
    job = priced("kim", "0.30")
    await ledger.run(jobs.on_job_priced, job)

    def answer(pin):
        return AnswerJob(job_id=job.job_id, user="kim", action="print", account="secret", pin=pin)

    for guess in ["0000", "1111", "2222", "3333", "4444"]:
        reply = await ledger.run(jobs.on_answer, answer(guess))
        assert isinstance(reply, ErrorReply) and reply.error == "wrong PIN"
    locked = await ledger.run(jobs.on_answer, answer("482913"))  # right, but locked out
    assert isinstance(locked, ErrorReply) and "too many wrong PINs" in locked.error
    assert await ledger.emitted("job.authorized") == []
    async with ledger.pool.acquire() as conn:  # the lock-out passes with time
        await conn.execute("UPDATE pin_failures SET failed_at = failed_at - interval '16 min'")
    ok = await ledger.run(jobs.on_answer, answer("482913"))
    assert (ok.outcome, ok.account) == ("authorized", "shared:secret")
    stored = await ledger.fetchval("SELECT pin_hash FROM accounts WHERE id = 'shared:secret'")
    assert "482913" not in stored and stored.startswith("scrypt$")


# ----------------------------------------------------------------- money in and out


async def test_top_up_is_idempotent_by_key(ledger):
    await add_user(ledger, "lee", "0")
    first = await ledger.run(money.on_topup, TopUp(key="k1", account="lee", amount=D("5")))
    again = await ledger.run(money.on_topup, TopUp(key="k1", account="lee", amount=D("5")))
    assert first.id == again.id
    assert await balance(ledger, "lee") == D("5.00")


async def test_adjustment_with_reason_both_ways(ledger):
    await add_user(ledger, "lee", "5.00")
    await ledger.run(
        money.on_adjust, Adjust(key="a1", account="lee", amount=D("-1.25"), reason="paper jam fee")
    )
    assert await balance(ledger, "lee") == D("3.75")
    zero = await ledger.run(
        money.on_adjust, Adjust(key="a2", account="lee", amount=D("0"), reason="nothing")
    )
    assert isinstance(zero, ErrorReply)


async def test_refunds_whole_partial_and_never_more_than_charged(ledger):
    await add_user(ledger, "max", "5.00")
    job = await charge(ledger, "max", "1.00")
    part = await ledger.run(
        money.on_refund, Refund(key="r1", job_id=job.job_id, amount=D("0.40"), reason="smudged")
    )
    assert part.kind == "refund"
    too_much = await ledger.run(
        money.on_refund, Refund(key="r2", job_id=job.job_id, amount=D("0.70"), reason="x")
    )
    assert isinstance(too_much, ErrorReply) and "at most 0.60" in too_much.error
    rest = await ledger.run(money.on_refund, Refund(key="r3", job_id=job.job_id, reason="x"))
    assert {e.amount for e in rest.entries} == {D("0.60"), D("-0.60")}
    again = await ledger.run(money.on_refund, Refund(key="r4", job_id=job.job_id, reason="x"))
    assert isinstance(again, ErrorReply) and "refunded in full" in again.error
    assert await balance(ledger, "max") == D("5.00")
    never = await ledger.run(money.on_refund, Refund(key="r5", job_id=uuid.uuid4(), reason="x"))
    assert isinstance(never, ErrorReply) and "was not charged" in never.error


async def test_concurrent_refunds_cannot_return_more_than_charged(ledger):
    await add_user(ledger, "ned", "5.00")
    job = await charge(ledger, "ned", "1.00")
    replies = await ledger.run_all(
        money.on_refund, [Refund(key=f"c{i}", job_id=job.job_id, reason="x") for i in range(10)]
    )
    assert sum(not isinstance(r, ErrorReply) for r in replies) == 1
    assert await balance(ledger, "ned") == D("5.00")


async def test_charges_spread_over_revenue_accounts_and_refunds_take_from_the_same(ledger):
    await add_user(ledger, "ned", "50.00")
    batch = [await charge(ledger, "ned", "1.00") for _ in range(12)]
    credited = await ledger.fetch(
        "SELECT t.job_id, e.account_id FROM transactions t JOIN entries e "
        "ON e.transaction_id = t.id WHERE t.kind = 'charge' AND e.account_id LIKE 'system:%'"
    )
    assert {r["job_id"]: r["account_id"] for r in credited} == {
        j.job_id: domain.revenue_account(j.job_id) for j in batch
    }
    assert len({r["account_id"] for r in credited}) > 1
    job = batch[0]
    refund = await ledger.run(money.on_refund, Refund(key="r", job_id=job.job_id, reason="x"))
    assert {(e.account, e.amount) for e in refund.entries} == {
        ("personal:ned", D("1.00")),
        (domain.revenue_account(job.job_id), D("-1.00")),
    }
    revenue = await ledger.fetchval(
        "SELECT sum(balance) FROM accounts WHERE id LIKE 'system:revenue%'"
    )
    assert revenue == D("11.00") and await balance(ledger, "ned") == D("39.00")


async def test_transfer_between_accounts(ledger):
    await add_user(ledger, "oli", "2.00")
    await add_user(ledger, "pat", "0")
    moved = await ledger.run(
        money.on_transfer,
        Transfer(key="t1", from_account="oli", to_account="pat", amount=D("1.50")),
    )
    assert not isinstance(moved, ErrorReply)
    refused = await ledger.run(
        money.on_transfer,
        Transfer(key="t2", from_account="oli", to_account="pat", amount=D("1.00")),
    )
    assert isinstance(refused, ErrorReply) and "cannot pay" in refused.error
    assert (await balance(ledger, "oli"), await balance(ledger, "pat")) == (D("0.50"), D("1.50"))


async def test_crossing_transfers_refunds_and_charges_at_once_never_deadlock(ledger):
    """A->B, B->A, B->lab and lab->A at the same time, with refunds and new charges on the
    same accounts: locks taken in one order mean no deadlock, and nothing is lost."""
    await add_user(ledger, "ann", "100.00")
    await add_user(ledger, "ben", "100.00")
    await shared(ledger, "lab")
    await ledger.run(money.on_topup, TopUp(key="fund", account="lab", amount=D("10.00")))
    charged = [await charge(ledger, login, "1.00") for login in ["ann", "ben"] * 10]

    def transfer(key: str, source: str, target: str, amount: str):
        return ledger.run(
            money.on_transfer,
            Transfer(key=key, from_account=source, to_account=target, amount=D(amount)),
        )

    work = [transfer(f"ab{i}", "ann", "ben", "0.50") for i in range(40)]
    work += [transfer(f"ba{i}", "ben", "ann", "0.30") for i in range(40)]
    work += [transfer(f"bl{i}", "ben", "lab", "0.20") for i in range(20)]
    work += [transfer(f"la{i}", "lab", "ann", "0.10") for i in range(20)]
    work += [
        ledger.run(money.on_refund, Refund(key=f"r{i}", job_id=j.job_id, reason="x"))
        for i, j in enumerate(charged)
    ]
    work += [charge(ledger, login, "0.25") for login in ["ann", "ben"] * 10]
    random.shuffle(work)
    replies = await asyncio.gather(*work)  # a deadlock would raise here
    assert not [r for r in replies if isinstance(r, ErrorReply)]
    assert await balance(ledger, "ann") == D("100") - 40 * D("0.50") + 40 * D("0.30") + 20 * D(
        "0.10"
    ) - 10 * D("0.25")
    assert await balance(ledger, "ben") == D("100") + 40 * D("0.50") - 40 * D("0.30") - 20 * D(
        "0.20"
    ) - 10 * D("0.25")
    lab = await ledger.run(accounts.on_show_account, ShowAccount(account="lab"))
    assert lab.balance == D("10") + 20 * D("0.20") - 20 * D("0.10")
    revenue = await ledger.fetchval(
        "SELECT sum(balance) FROM accounts WHERE id LIKE 'system:revenue%'"
    )
    assert revenue == 20 * D("0.25")  # the first twenty charges were refunded in full


# ----------------------------------------------------------------- low credit


async def test_low_balance_is_announced_once_per_crossing(ledger):
    await add_user(ledger, "quinn", "1.50", low_balance_threshold=D("1.00"))
    await charge(ledger, "quinn", "0.30")  # 1.20: above
    await charge(ledger, "quinn", "0.30")  # 0.90: crosses -> one warning
    await charge(ledger, "quinn", "0.30")  # 0.60: still below, no second warning
    lows = await ledger.emitted("account.balance_low")
    assert len(lows) == 1 and lows[0].available == D("0.90") and lows[0].threshold == D("1.00")
    await ledger.run(money.on_topup, TopUp(key="k", account="quinn", amount=D("5")))  # re-arms
    await charge(ledger, "quinn", "4.80")  # 0.80: crosses again
    assert len(await ledger.emitted("account.balance_low")) == 2


async def test_the_default_threshold_warns_a_user_without_their_own(ledger):
    assert D("1.00") == common.default_low_balance()  # PLATEN_LOW_BALANCE_THRESHOLD unset
    await add_user(ledger, "quinn", "1.50")
    assert (
        await ledger.run(users.on_show_user, ShowUser(login="quinn"))
    ).low_balance_threshold is None
    await charge(ledger, "quinn", "0.50")  # 1.00: not below
    assert await ledger.emitted("account.balance_low") == []
    await charge(ledger, "quinn", "0.01")  # 0.99: below the default
    [low] = await ledger.emitted("account.balance_low")
    assert (low.available, low.threshold) == (D("0.99"), D("1.00"))


# ----------------------------------------------------------------- reports


async def test_statement_has_running_balances(ledger):
    await add_user(ledger, "ray", "5.00")
    await charge(ledger, "ray", "0.30")
    await ledger.run(money.on_topup, TopUp(key="k", account="ray", amount=D("1.00")))
    view = await ledger.run(reports.on_statement, Statement(account="ray"))
    assert [(line.kind, line.amount, line.balance_after) for line in view.lines] == [
        ("top-up", D("5.00"), D("5.00")),
        ("charge", D("-0.30"), D("4.70")),
        ("top-up", D("1.00"), D("5.70")),
    ]
    assert (view.opening_balance, view.closing_balance) == (D("0.00"), D("5.70"))
    later = await ledger.run(
        reports.on_statement, Statement(account="ray", since=datetime.now(UTC) + timedelta(hours=1))
    )
    assert later.lines == []


async def test_a_statement_cut_short_says_so_and_closes_at_the_real_balance(ledger):
    await add_user(ledger, "ray", "5.00")
    for i in range(3):
        await ledger.run(money.on_topup, TopUp(key=f"k{i}", account="ray", amount=D("1.00")))
    cut = await ledger.run(reports.on_statement, Statement(account="ray", limit=2))
    assert [line.balance_after for line in cut.lines] == [D("5.00"), D("6.00")]
    assert (cut.truncated, cut.opening_balance, cut.closing_balance) == (
        True,
        D("0.00"),
        D("8.00"),
    )
    whole = await ledger.run(reports.on_statement, Statement(account="ray", limit=4))
    assert (whole.truncated, len(whole.lines), whole.closing_balance) == (False, 4, D("8.00"))


async def test_verify_reports_a_tampered_balance(ledger):
    await add_user(ledger, "sam", "5.00")
    report = await ledger.run(reports.on_verify, VerifyLedger())
    assert report.problems == [] and report.transactions == 1
    # The database refuses this to every role but a superuser who turns triggers off
    # (test_ledger_guards_db.py); verify still finds what such a superuser did.
    tamper = (
        "SET session_replication_role = replica; "
        "UPDATE accounts SET balance = {} WHERE id = 'personal:sam'"
    )
    async with ledger.as_superuser() as conn:
        await conn.execute(tamper.format(99))
    report = await ledger.run(reports.on_verify, VerifyLedger())
    assert any("personal:sam has balance 99.00" in p for p in report.problems)
    async with ledger.as_superuser() as conn:  # put it back for the fixture's final check
        await conn.execute(tamper.format(5))


async def test_verify_reports_a_hold_that_outlived_its_job(ledger):
    await add_user(ledger, "tia", "5.00")
    await ledger.run(jobs.on_job_priced, priced("tia", "0.30"))
    async with ledger.pool.acquire() as conn:
        await conn.execute("UPDATE holds SET created_at = now() - interval '2 days'")
    report = await ledger.run(reports.on_verify, VerifyLedger())
    assert any("still pending since" in p for p in report.problems)
    async with ledger.pool.acquire() as conn:
        await conn.execute("UPDATE holds SET state = 'voided'")


async def test_the_age_a_hold_may_reach_is_configurable(ledger):
    await add_user(ledger, "tia", "5.00")
    await ledger.run(jobs.on_job_priced, priced("tia", "0.30"))
    async with ledger.pool.acquire() as conn:
        await conn.execute("UPDATE holds SET created_at = now() - interval '2 hours'")
        assert await store.verify(conn) == []  # the default allows a day
        [problem] = await store.verify(conn, max_hold_age=timedelta(hours=1))
        assert "still pending since" in problem
        await conn.execute("UPDATE holds SET state = 'voided'")


async def test_verify_reports_a_pending_hold_of_a_closed_job(ledger):
    await add_user(ledger, "tia", "5.00")
    job = priced("tia", "0.30")
    await ledger.run(jobs.on_job_priced, job)
    async with ledger.pool.acquire() as conn:  # closed, as on_job_not_printed would, but
        await conn.execute("INSERT INTO closed_jobs (job_id) VALUES ($1)", job.job_id)
        report = await ledger.run(reports.on_verify, VerifyLedger())  # the hold stayed
        assert report.problems == [
            f"hold for job {job.job_id} is still pending but the job was closed"
        ]
        await conn.execute("UPDATE holds SET state = 'voided'")


async def test_verify_reports_a_pending_hold_of_a_charged_job(ledger):
    await add_user(ledger, "tia", "5.00")
    job = await charge(ledger, "tia", "0.30")
    async with ledger.as_superuser() as conn:  # the database refuses it to the service
        await unguarded(conn, "UPDATE holds SET state = 'pending'")
        report = await ledger.run(reports.on_verify, VerifyLedger())
        assert report.problems == [
            f"hold for job {job.job_id} is still pending but the job was charged"
        ]
        await unguarded(conn, "UPDATE holds SET state = 'posted'")


async def test_verify_reports_a_posted_hold_without_its_charge(ledger):
    await add_user(ledger, "tia", "5.00")
    job = priced("tia", "0.30")
    await ledger.run(jobs.on_job_priced, job)
    async with ledger.as_superuser() as conn:  # the database refuses it to the service
        await unguarded(conn, "UPDATE holds SET state = 'posted'")
        report = await ledger.run(reports.on_verify, VerifyLedger())
        assert report.problems == [f"hold for job {job.job_id} is posted but no charge exists"]
        await unguarded(conn, "UPDATE holds SET state = 'voided'")


async def unguarded(conn, *statements) -> None:
    """Run `statements` with the ledger's triggers off (a superuser replaying data as a
    replica, `ledger.as_superuser()`): the only way to build what the database otherwise
    refuses; the service's own role may not."""
    async with conn.transaction():
        await conn.execute("SET LOCAL session_replication_role = replica")
        for sql in statements:
            await conn.execute(sql)


async def test_verify_reports_an_unbalanced_transaction(ledger):
    await add_user(ledger, "tia", "5.00")
    tx = await ledger.fetchval("SELECT id FROM transactions")
    async with ledger.as_superuser() as conn:
        await unguarded(
            conn,
            "INSERT INTO entries (id, transaction_id, account_id, amount, balance_after) "
            f"VALUES (-1, {tx}, 'personal:tia', 1, 6)",
        )
        problems = await store.verify(conn)
        assert f"transaction {tx} sums to 1.00, not 0" in problems
        assert "account personal:tia has balance 5.00 but its entries sum to 6.00" in problems
        assert "all entries sum to 1.00, not 0" in problems
        await unguarded(conn, "DELETE FROM entries WHERE id = -1")


async def test_verify_reports_a_job_refunded_more_than_it_was_charged(ledger):
    await add_user(ledger, "tia", "5.00")
    job = await charge(ledger, "tia", "1.00")
    revenue = await ledger.fetchval(
        "SELECT e.account_id FROM entries e JOIN transactions t ON t.id = e.transaction_id "
        "WHERE t.kind = 'charge' AND e.account_id LIKE 'system:%'"
    )
    async with ledger.pool.acquire() as conn:  # balanced, so the database lets it in
        async with conn.transaction():
            tx = await conn.fetchval(
                "INSERT INTO transactions (op_key, kind, job_id, description) "
                "VALUES ('refund:too-much', 'refund', $1, 'x') RETURNING id",
                job.job_id,
            )
            await conn.execute(
                "INSERT INTO entries (transaction_id, account_id, amount, balance_after) "
                "VALUES ($1, 'personal:tia', 1.50, 0), ($1, $2, -1.50, 0)",
                tx,
                revenue,
            )
        report = await ledger.run(reports.on_verify, VerifyLedger())
        assert report.problems == [f"job {job.job_id} was refunded 1.50 but charged 1.00"]
    async with ledger.as_superuser() as conn:
        await unguarded(
            conn,
            f"DELETE FROM entries WHERE transaction_id = {tx}",
            f"DELETE FROM transactions WHERE id = {tx}",
            "UPDATE accounts SET balance = balance - 1.50 WHERE id = 'personal:tia'",
            f"UPDATE accounts SET balance = balance + 1.50 WHERE id = '{revenue}'",
        )


async def test_concurrent_top_ups_and_charges_keep_every_balance_exact(ledger):
    await add_user(ledger, "uma", "10.00")
    work = [charge(ledger, "uma", "0.10") for _ in range(30)]
    work += [
        ledger.run(money.on_topup, TopUp(key=f"t{i}", account="uma", amount=D("0.05")))
        for i in range(30)
    ]
    await asyncio.gather(*work)
    assert await balance(ledger, "uma") == D("10.00") - 30 * D("0.10") + 30 * D("0.05")


# ----------------------------------------------------------------- found in review


async def test_a_price_arriving_after_the_cancellation_holds_nothing(ledger):
    await add_user(ledger, "vic", "1.00")
    job = priced("vic", "0.30")
    await ledger.run(
        jobs.on_job_not_printed,
        JobCancelled(
            job_id=job.job_id,
            user="vic",
            printer="lab-1",
            document_name="doc.pdf",
            reason="deadline",
        ),
    )
    await ledger.run(jobs.on_job_priced, job)  # late: pricing was slow
    view = await ledger.run(users.on_show_user, ShowUser(login="vic"))
    assert (view.held, view.holds) == (D("0.00"), [])
    assert await ledger.emitted("job.authorized") == []


async def test_price_and_cancellation_at_the_same_moment_leave_no_hold(ledger):
    await add_user(ledger, "wes", "10.00")
    batch = [priced("wes", "0.30") for _ in range(20)]
    cancels = [
        JobCancelled(
            job_id=j.job_id, user="wes", printer="lab-1", document_name="doc.pdf", reason="x"
        )
        for j in batch
    ]
    await asyncio.gather(
        *(ledger.run(jobs.on_job_priced, j) for j in batch),
        *(ledger.run(jobs.on_job_not_printed, c) for c in cancels),
    )
    view = await ledger.run(users.on_show_user, ShowUser(login="wes"))
    assert (view.held, view.holds) == (D("0.00"), [])


async def test_a_revoked_grant_stops_the_next_job(ledger):
    await shared(ledger, "lab")
    await ledger.run(accounts.on_grant, GrantAccess(account="lab", users=["xia"]))
    await add_user(ledger, "xia", "0", default_account="lab")
    await ledger.run(accounts.on_revoke, RevokeAccess(account="lab", users=["xia"]))
    job = priced("xia", "0.30")
    await ledger.run(jobs.on_job_priced, job)
    [denied] = await ledger.emitted("job.denied")
    assert "may no longer charge" in denied.reason


async def test_wrong_pins_sent_at_once_for_many_jobs_still_lock_out(ledger):
    await shared(ledger, "secret", pin="482913")
    await add_user(ledger, "yan", "5.00", account_selection="choose")
    batch = [priced("yan", "0.10") for _ in range(12)]
    for j in batch:
        await ledger.run(jobs.on_job_priced, j)
    replies = await ledger.run_all(
        jobs.on_answer,
        [
            AnswerJob(job_id=j.job_id, user="yan", action="print", account="secret", pin=f"{i:04d}")
            for i, j in enumerate(batch)
        ],
    )
    wrong = [r for r in replies if isinstance(r, ErrorReply) and r.error == "wrong PIN"]
    assert len(wrong) == 5  # the sixth and later guesses meet the lock-out
    assert await ledger.fetchval("SELECT count(*) FROM pin_failures") == 5


async def test_users_guessing_one_accounts_pin_in_parallel_are_stopped_together(ledger):
    await shared(ledger, "secret", pin="482913")
    guessers = [f"g{n}" for n in range(4)]
    batch = []
    for login in guessers:
        await add_user(ledger, login, "5.00", account_selection="choose")
        for _ in range(4):  # four each: below each user's own limit of five
            batch.append(priced(login, "0.10"))
    for j in batch:
        await ledger.run(jobs.on_job_priced, j)
    replies = await ledger.run_all(
        jobs.on_answer,
        [
            AnswerJob(
                job_id=j.job_id, user=j.user, action="print", account="secret", pin=f"1{i:05d}"
            )
            for i, j in enumerate(batch)
        ],
    )
    wrong = [r for r in replies if isinstance(r, ErrorReply) and r.error == "wrong PIN"]
    assert len(wrong) == 10  # 16 guesses at once: the eleventh and later meet the lock-out
    assert await ledger.fetchval("SELECT count(*) FROM pin_failures") == 10
    [locked] = await ledger.emitted("account.pin_locked")
    assert (locked.account, locked.scope, locked.failures) == ("shared:secret", "account", 10)


async def test_a_weak_pin_is_refused_and_the_account_not_made(ledger):
    refused = await ledger.run(accounts.on_add_account, AddAccount(name="lab", pin="123456"))
    assert isinstance(refused, ErrorReply) and "a run" in refused.error
    assert await ledger.fetchval("SELECT count(*) FROM accounts WHERE id = 'shared:lab'") == 0


async def test_amounts_with_more_than_cents_are_refused(ledger):
    await add_user(ledger, "zoe", "1.00")
    reply = await ledger.run(money.on_topup, TopUp(key="k", account="zoe", amount=D("0.004")))
    assert isinstance(reply, ErrorReply) and "more than two decimals" in reply.error
    assert await balance(ledger, "zoe") == D("1.00")


async def test_settings_with_more_than_cents_are_refused_not_rounded(ledger):
    refused = await ledger.run(users.on_add_user, AddUser(login="zed", initial_balance=D("1.005")))
    assert isinstance(refused, ErrorReply)
    assert (
        refused.error == "starting balance 1.005 has more than two decimals; amounts are in cents"
    )
    assert await ledger.fetchval("SELECT count(*) FROM users") == 0  # nothing created
    plain = await ledger.run(users.on_add_user, AddUser(login="pat"))  # the default balance
    assert not isinstance(plain, ErrorReply) and plain.balance == D("0.00")
    await add_user(ledger, "zoe", "1.00")
    for change, what in [
        ({"overdraft_limit": D("0.505")}, "overdraft limit 0.505"),
        ({"low_balance_threshold": D("2.001")}, "low-balance threshold 2.001"),
    ]:
        reply = await ledger.run(users.on_set_user, SetUser(login="zoe", **change))
        assert isinstance(reply, ErrorReply) and reply.error.startswith(what)
    view = await ledger.run(users.on_show_user, ShowUser(login="zoe"))
    assert (view.overdraft_limit, view.low_balance_threshold) == (D("0.00"), None)
    for command in [
        AddAccount(name="lab", overdraft_limit=D("0.001")),
        SetAccount(account="lab", overdraft_limit=D("0.001")),
    ]:
        handler = (
            accounts.on_add_account
            if isinstance(command, AddAccount)
            else (accounts.on_set_account)
        )
        reply = await ledger.run(handler, command)
        assert isinstance(reply, ErrorReply) and "overdraft limit 0.001 has more" in reply.error
    assert await ledger.fetchval("SELECT count(*) FROM accounts WHERE kind = 'shared'") == 0


# ----------------------------------------------------------------- retention


async def test_pruning_with_no_retention_keeps_what_is_still_needed_and_never_the_journal(ledger):
    await shared(ledger, "secret", pin="482913")
    await add_user(ledger, "ada", "5.00", account_selection="confirm")

    async def counts():
        tables = ["pending_inputs", "closed_jobs", "pin_failures", "holds", "transactions"]
        return {t: await ledger.fetchval(f"SELECT count(*) FROM {t}") for t in tables}

    before = await counts()
    answered, waiting, other = (priced("ada", "0.30") for _ in range(3))
    for job in (answered, waiting, other):
        await ledger.run(jobs.on_job_priced, job)
    await ledger.run(jobs.on_answer, AnswerJob(job_id=answered.job_id, user="ada", action="print"))
    await ledger.run(jobs.on_job_printed, printed(answered))
    never_priced = JobCancelled(
        job_id=uuid.uuid4(), user="ada", printer="lab-1", document_name="d.pdf", reason="x"
    )
    await ledger.run(jobs.on_job_not_printed, never_priced)
    async with ledger.pool.acquire() as conn:
        for age in ("1 minute", "16 minutes"):
            await conn.execute(
                "INSERT INTO pin_failures (user_login, account_id, failed_at) "
                f"VALUES ('ada', 'shared:secret', now() - interval '{age}')"
            )
        await conn.execute("UPDATE pending_inputs SET created_at = created_at - interval '1 s'")
        await conn.execute("UPDATE closed_jobs SET closed_at = closed_at - interval '1 s'")
        pruned = await retention.prune_history(conn, store.Store, timedelta(0))
    assert pruned == {"pending_inputs": 1, "closed_jobs": 1, "pin_failures": 1}
    after = await counts()
    # Left: the two questions still open, the wrong PIN still inside the lock-out window,
    # and every hold and posting (the journal is never pruned).
    assert after["pending_inputs"] == before["pending_inputs"] + 2
    assert after["closed_jobs"] == before["closed_jobs"]
    assert after["pin_failures"] == before["pin_failures"] + 1
    assert after["holds"] == before["holds"] + 1
    assert after["transactions"] > before["transactions"]
    left = await ledger.fetch("SELECT job_id FROM pending_inputs WHERE state = 'open'")
    assert {r["job_id"] for r in left} == {waiting.job_id, other.job_id}
