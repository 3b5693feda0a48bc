"""Domain events turned into one user's desktop messages (fake store, no broker)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from platen.events.accounts import BalanceChanged, BalanceLow, JobCharged
from platen.events.desktop import (
    BalanceNotice,
    Broadcast,
    BroadcastNotice,
    DeniedNotice,
    LowBalanceNotice,
    PrintedNotice,
    PromptClosed,
)
from platen.events.jobs import JobDenied
from platen.events.routing import DESKTOP
from platen.notification import broadcasts, handlers
from platen.notification.domain import Prompt


async def test_a_charged_job_is_told_to_its_user(ctx, store):
    job_id = uuid.uuid4()
    event = JobCharged(
        job_id=job_id,
        user="bob",
        account="personal:bob",
        printer="lab-1",
        document_name="a.pdf",
        sides=2,
        copies=1,
        amount="0.20",
        balance="9.80",
    )
    await handlers.on_job_charged(ctx, event)
    [sent] = ctx.emitted
    assert sent.message == PrintedNotice(
        job_id=job_id,
        document_name="a.pdf",
        printer="lab-1",
        sides=2,
        copies=1,
        cost=Decimal("0.20"),
        balance=Decimal("9.80"),
    )
    assert (sent.exchange, sent.routing_key) == (DESKTOP, "user.bob.job_printed")
    assert sent.correlation_id == str(job_id)
    assert store.deliveries == [("bob", "job_printed", job_id)]


async def test_a_denied_job_is_told_to_its_user_and_closes_its_popup(ctx, store):
    job_id = uuid.uuid4()
    await store.add_prompt(Prompt(job_id, "bob", "a.pdf", datetime.now(UTC) + timedelta(minutes=5)))
    event = JobDenied(
        job_id=job_id,
        user="bob",
        printer="lab-1",
        document_name="a.pdf",
        reason="no",
        denied_by="account-ledger",
    )
    await handlers.on_job_denied(ctx, event)
    [notice] = ctx.messages(DeniedNotice)
    assert notice.reason == "no"
    [closed] = ctx.messages(PromptClosed)
    assert (closed.outcome, closed.reason) == ("denied", "no")
    assert [e.routing_key for e in ctx.emitted] == ["user.bob.job_denied", "user.bob.prompt_closed"]
    assert store.prompts[job_id].state == "closed"


async def test_balances_go_to_the_owner_and_shared_accounts_to_nobody(ctx, store):
    await handlers.on_balance_changed(
        ctx, BalanceChanged(account="shared:lab", owner=None, balance="5", available="5")
    )
    assert ctx.emitted == []
    await handlers.on_balance_changed(
        ctx, BalanceChanged(account="personal:bob", owner="bob", balance="5", available="4")
    )
    await handlers.on_balance_low(
        ctx,
        BalanceLow(account="personal:bob", owner="bob", balance="1", available="1", threshold="2"),
    )
    assert [type(m) for m in ctx.messages()] == [BalanceNotice, LowBalanceNotice]
    assert [e.routing_key for e in ctx.emitted] == ["user.bob.balance", "user.bob.low_balance"]
    assert all(e.correlation_id is None for e in ctx.emitted)


async def test_a_broadcast_reaches_every_enabled_user_or_those_named(ctx, store):
    for login in ("alice", "bob", "carol"):
        await store.add_desktop_identity(login)
    store.desktops["carol"] = False
    sent = await broadcasts.on_broadcast(
        ctx, Broadcast(text="Printers down at noon", sender="admin", expires_in_minutes=5)
    )
    assert sent.desktops == 2
    assert [e.routing_key for e in ctx.emitted] == ["user.alice.broadcast", "user.bob.broadcast"]
    assert all(e.expiration_ms == 300_000 for e in ctx.emitted)
    assert ctx.messages(BroadcastNotice)[0].text == "Printers down at noon"

    ctx.emitted.clear()
    sent = await broadcasts.on_broadcast(
        ctx, Broadcast(text="hi", sender="admin", users=["dave", "dave"])
    )
    assert sent.desktops == 1
    assert [e.routing_key for e in ctx.emitted] == ["user.dave.broadcast"]
    assert ctx.emitted[0].expiration_ms is None
