"""Money in and out through the handlers, with an in-memory store and no broker."""

from __future__ import annotations

import uuid
from decimal import Decimal as D

import pytest

from platen.account_ledger import domain
from platen.account_ledger.handlers import jobs, money, users
from platen.events.accounts import AddUser, BalanceChanged, Refund, TopUp, Transfer
from platen.events.system import ErrorReply
from platen.messaging.fakes import FakeContext

from ..builders import priced, printed
from .fakes import FakeStore


@pytest.fixture
def ctx() -> FakeContext:
    return FakeContext(store=FakeStore(), producer="account-ledger")


async def test_a_top_up_posts_once_per_key_and_announces_the_balance(ctx):
    await users.on_add_user(ctx, AddUser(login="lee"))
    first = await money.on_topup(ctx, TopUp(key="k1", account="lee", amount=D("5.00")))
    again = await money.on_topup(ctx, TopUp(key="k1", account="lee", amount=D("5.00")))
    assert first.id == again.id
    assert {(e.account, e.amount) for e in first.entries} == {
        ("personal:lee", D("5.00")),
        (domain.FUNDING, D("-5.00")),
    }
    assert await ctx.store.balance("personal:lee") == D("5.00")
    assert [m.balance for m in ctx.messages(BalanceChanged)] == [D("0"), D("5.00")]


async def test_amounts_with_more_than_cents_are_refused(ctx):
    await users.on_add_user(ctx, AddUser(login="zoe"))
    reply = await money.on_topup(ctx, TopUp(key="k", account="zoe", amount=D("0.004")))
    assert isinstance(reply, ErrorReply) and "more than two decimals" in reply.error
    assert ctx.store.transactions == []


async def test_a_transfer_needs_the_funds_the_source_may_spend(ctx):
    await users.on_add_user(ctx, AddUser(login="oli", initial_balance=D("2.00")))
    await users.on_add_user(ctx, AddUser(login="pat"))
    moved = await money.on_transfer(
        ctx, Transfer(key="t1", from_account="oli", to_account="pat", amount=D("1.50"))
    )
    assert not isinstance(moved, ErrorReply)
    refused = await money.on_transfer(
        ctx, Transfer(key="t2", from_account="oli", to_account="pat", amount=D("1.00"))
    )
    assert isinstance(refused, ErrorReply) and "cannot pay" in refused.error
    assert ("account", "personal:oli") in ctx.store.locks  # locked before its funds are read
    balances = [await ctx.store.balance(f"personal:{u}") for u in ["oli", "pat"]]
    assert balances == [D("0.50"), D("1.50")]


async def test_refunds_return_what_was_charged_to_whom_paid_and_never_more(ctx):
    await users.on_add_user(ctx, AddUser(login="max", initial_balance=D("5.00")))
    job = priced("max", "1.00")
    await jobs.on_job_priced(ctx, job)
    await jobs.on_job_printed(ctx, printed(job))
    part = await money.on_refund(
        ctx, Refund(key="r1", job_id=job.job_id, amount=D("0.40"), reason="x")
    )
    assert {(e.account, e.amount) for e in part.entries} == {
        ("personal:max", D("0.40")),
        (domain.revenue_account(job.job_id), D("-0.40")),
    }
    too_much = await money.on_refund(
        ctx, Refund(key="r2", job_id=job.job_id, amount=D("0.70"), reason="x")
    )
    assert too_much.error == "at most 0.60 of this job can still be refunded"
    await money.on_refund(ctx, Refund(key="r3", job_id=job.job_id, reason="x"))
    done = await money.on_refund(ctx, Refund(key="r4", job_id=job.job_id, reason="x"))
    assert done.error == "this job has been refunded in full already"
    never = await money.on_refund(ctx, Refund(key="r5", job_id=uuid.uuid4(), reason="x"))
    assert "was not charged" in never.error
    assert await ctx.store.balance("personal:max") == D("5.00")
