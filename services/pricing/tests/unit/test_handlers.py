"""Pricing's handlers run as the dispatcher runs them, over a fake store: no database,
no broker. (The same flows against PostgreSQL: integration/test_pricing_db.py.)"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from platen.events.accounts import UserGroupsSet
from platen.events.jobs import JobCaptured, JobDenied, JobPriced, SideGroup
from platen.events.printers import (
    AddPrinter,
    CostModel,
    Policy,
    PolicyView,
    Quote,
    QuoteJob,
    SetCostModel,
    SetPolicy,
    SetPrinterGroups,
    ShowPrinter,
)
from platen.events.system import ErrorReply
from platen.messaging.fakes import FakeContext
from platen.pricing import handlers

from .fakes import FakeStore

D = Decimal
NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def ctx() -> FakeContext:
    return FakeContext(store=FakeStore(NOW), producer="pricing")


def captured(printer="lab", groups=((False, 3),), copies=1, **kw) -> JobCaptured:
    side_groups = [SideGroup(paper="A4", color=c, count=n) for c, n in groups]
    return JobCaptured(
        job_id=uuid.uuid4(),
        user="alice",
        printer=printer,
        document_name="a.pdf",
        pages=sum(n for _, n in groups),
        copies=copies,
        size_bytes=100,
        captured_at=NOW,
        sides=sum(n for _, n in groups),
        side_groups=side_groups,
        identity="authenticated",
        **kw,
    )


async def test_a_captured_job_is_priced_by_the_schedule_in_effect(ctx):
    await handlers.on_add_printer(ctx, AddPrinter(name="lab", price_per_page=D("0.10")))
    ctx.emitted.clear()
    event = captured(groups=((False, 2), (True, 1)), copies=2)
    await handlers.on_job_captured(ctx, event)
    [sent] = ctx.emitted
    priced = sent.message
    assert isinstance(priced, JobPriced)
    assert priced.cost == D("0.60")
    assert (priced.sides, priced.color_sides, priced.grayscale_sides) == (3, 1, 2)
    assert priced.schedule_version == 1
    assert priced.confirm is False
    assert sent.routing_key == "job.priced"
    assert sent.correlation_id == str(event.job_id)


async def test_a_job_for_a_printer_not_set_up_is_denied(ctx):
    event = captured(printer="nowhere")
    await handlers.on_job_captured(ctx, event)
    [denied] = ctx.messages()
    assert isinstance(denied, JobDenied)
    assert denied.reason == "printer 'nowhere' is not set up for charging"
    assert denied.denied_by == "pricing"


async def test_a_policy_denies_and_a_group_policy_applies_through_the_printers_groups(ctx):
    await handlers.on_add_printer(ctx, AddPrinter(name="lab", price_per_page=D("0.10")))
    await handlers.on_set_printer_groups(ctx, SetPrinterGroups(name="lab", groups=["floor-2"]))
    await handlers.on_set_policy(
        ctx, SetPolicy(scope="group", target="floor-2", policy=Policy(color_groups=["staff"]))
    )
    await handlers.on_job_captured(ctx, captured(groups=((True, 1),)))
    [denied] = ctx.messages(JobDenied)
    assert "colour printing on lab is only for the groups: staff" in denied.reason
    assert "group floor-2 policy" in denied.reason

    # Once pricing knows alice is staff (the ledger's event), her colour job prints.
    await handlers.on_user_groups_set(ctx, UserGroupsSet(login="alice", groups=["staff"]))
    await handlers.on_job_captured(ctx, captured(groups=((True, 1),)))
    [priced] = ctx.messages(JobPriced)
    assert priced.cost == D("0.10")


async def test_a_late_older_groups_announcement_does_not_undo_a_newer_one(ctx):
    """Two announcements of alice's groups delivered in the wrong order: the copy keeps
    the ledger's later change, so her colour rights are what the administrator set last."""
    await handlers.on_add_printer(ctx, AddPrinter(name="lab", price_per_page=D("0.10")))
    await handlers.on_set_policy(
        ctx, SetPolicy(scope="printer", target="lab", policy=Policy(color_groups=["staff"]))
    )
    await handlers.on_user_groups_set(
        ctx, UserGroupsSet(login="alice", groups=["staff"], revision=2)
    )
    await handlers.on_user_groups_set(
        ctx, UserGroupsSet(login="alice", groups=["students"], revision=1)
    )
    assert await ctx.store.user_groups("alice") == {"staff"}
    await handlers.on_job_captured(ctx, captured(groups=((True, 1),)))
    assert ctx.messages(JobPriced) and not ctx.messages(JobDenied)

    # A later change (the administrator took her out of staff) is taken.
    await handlers.on_user_groups_set(
        ctx, UserGroupsSet(login="alice", groups=["students"], revision=3)
    )
    assert await ctx.store.user_groups("alice") == {"students"}


async def test_an_unverified_job_asks_its_user_first(ctx):
    await handlers.on_add_printer(ctx, AddPrinter(name="lab", price_per_page=D("0.10")))
    event = captured().model_copy(update={"identity": "unverified", "origin_host": "pc-7"})
    await handlers.on_job_captured(ctx, event)
    [priced] = ctx.messages(JobPriced)
    assert priced.confirm is True
    assert "pc-7" in priced.messages[0] and "a.pdf" in priced.messages[0]


async def test_printer_commands_version_the_schedule_and_show_it(ctx):
    view = await handlers.on_add_printer(ctx, AddPrinter(name="lab", price_per_page=D("0.10")))
    assert (view.schedule_version, view.price_per_page) == (1, D("0.10"))
    model = CostModel(page=D("0.10"), color_page=D("0.50"))
    view = await handlers.on_set_cost_model(ctx, SetCostModel(name="lab", model=model))
    assert (view.schedule_version, view.cost_model) == (2, model)
    # A new page price keeps the rest of the model.
    view = await handlers.on_add_printer(ctx, AddPrinter(name="lab", price_per_page=D("0.12")))
    assert view.schedule_version == 3
    assert view.cost_model == CostModel(page=D("0.12"), color_page=D("0.50"))
    assert await handlers.on_show_printer(ctx, ShowPrinter(name="lab")) == view
    assert ctx.emitted == []


async def test_commands_about_an_unknown_printer_are_refused(ctx):
    assert await handlers.on_show_printer(ctx, ShowPrinter(name="x")) == ErrorReply(
        error="no printer named 'x'"
    )
    assert await handlers.on_set_printer_groups(
        ctx, SetPrinterGroups(name="x", groups=["g"])
    ) == ErrorReply(error="no printer named 'x'")
    reply = await handlers.on_set_policy(
        ctx, SetPolicy(scope="printer", target="x", policy=Policy(max_pages=1))
    )
    assert reply == ErrorReply(error="no printer named 'x'")
    # A group policy needs no printer: the group may get printers later.
    reply = await handlers.on_set_policy(
        ctx, SetPolicy(scope="group", target="g", policy=Policy(max_pages=1))
    )
    assert isinstance(reply, PolicyView)


async def test_an_empty_policy_clears_it(ctx):
    await handlers.on_add_printer(ctx, AddPrinter(name="lab", price_per_page=D("0.10")))
    await handlers.on_set_policy(
        ctx, SetPolicy(scope="printer", target="lab", policy=Policy(max_pages=2))
    )
    assert len((await handlers.on_show_printer(ctx, ShowPrinter(name="lab"))).policies) == 1
    await handlers.on_set_policy(ctx, SetPolicy(scope="printer", target="lab", policy=Policy()))
    assert (await handlers.on_show_printer(ctx, ShowPrinter(name="lab"))).policies == []


async def test_a_quote_prices_as_a_job_would_and_emits_nothing(ctx):
    await handlers.on_add_printer(ctx, AddPrinter(name="lab", price_per_page=D("0.10")))
    await handlers.on_set_policy(
        ctx, SetPolicy(scope="printer", target="lab", policy=Policy(max_pages=2))
    )
    quote = await handlers.on_quote(
        ctx,
        QuoteJob(printer="lab", side_groups=[SideGroup(paper="A4", color=False, count=3)]),
    )
    assert isinstance(quote, Quote)
    assert (quote.cost, quote.schedule_version, quote.sides) == (D("0.30"), 1, 3)
    assert quote.denied  # more sides than the policy allows
    missing = await handlers.on_quote(
        ctx, QuoteJob(printer="x", side_groups=[SideGroup(paper="A4", color=False, count=1)])
    )
    assert missing == ErrorReply(error="printer 'x' is not set up for charging")
    assert ctx.emitted == []


async def test_a_job_captured_before_a_price_change_pays_the_old_price(ctx):
    ctx.store.clock = NOW - timedelta(hours=1)
    await handlers.on_add_printer(ctx, AddPrinter(name="lab", price_per_page=D("0.10")))
    ctx.store.clock = NOW + timedelta(minutes=1)
    await handlers.on_add_printer(ctx, AddPrinter(name="lab", price_per_page=D("0.20")))
    await handlers.on_job_captured(ctx, captured())
    [priced] = ctx.messages(JobPriced)
    assert (priced.cost, priced.schedule_version) == (D("0.30"), 1)
