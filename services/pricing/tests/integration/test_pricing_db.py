"""Pricing's handlers and tables against a real PostgreSQL, without the broker.

Each handler runs in its own transaction, as the service runs one delivery; what it emits
stays in the outbox table for the test to read.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from platen.db import apply_migrations, create_pool, load_migrations
from platen.events.accounts import UserGroupsSet
from platen.events.jobs import JobCaptured, JobDenied, JobPriced, SideGroup
from platen.events.printers import (
    AddPrinter,
    CostModel,
    Policy,
    Quote,
    QuoteJob,
    SetCostModel,
    SetPolicy,
    SetPrinterGroups,
    ShowPrinter,
)
from platen.events.registry import decode
from platen.events.system import ErrorReply
from platen.messaging.handling import apply_in_transaction
from platen.messaging.service import MESSAGING_MIGRATIONS
from platen.pricing import handlers
from platen.pricing.store import Store

D = Decimal
MIGRATIONS = Path(__file__).parents[2] / "src/platen/pricing/migrations"


class Pricing:
    def __init__(self, pool) -> None:
        self.pool = pool

    async def run(self, handler, message):
        return await apply_in_transaction(self.pool, "pricing", handler, message, store=Store)

    async def emitted(self, message_type: str) -> list:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT message_type, schema_version, body FROM outbox WHERE message_type = $1 "
                "ORDER BY id",
                message_type,
            )
        return [decode(r["message_type"], r["schema_version"], r["body"]) for r in rows]


def all_migrations():
    return load_migrations("messaging", MESSAGING_MIGRATIONS) + load_migrations(
        "pricing", MIGRATIONS
    )


@pytest.fixture
async def pricing(database_url):
    pool = await create_pool(database_url, "pricing", min_size=2, max_size=20)
    async with pool.acquire() as conn:
        await apply_migrations(conn, "pricing", all_migrations())
    yield Pricing(pool)
    await pool.close()


def captured(
    printer: str,
    at: datetime,
    groups,
    *,
    user="alice",
    copies=1,
    duplex=False,
    identity="present",
    origin_host=None,
):
    """A captured job; by default one whose user was proven (her desktop at its host)."""
    sides = sum(g[2] for g in groups)
    return JobCaptured(
        job_id=uuid.uuid4(),
        user=user,
        printer=printer,
        document_name="doc.pdf",
        pages=sides,
        copies=copies,
        size_bytes=100,
        captured_at=at,
        duplex=duplex,
        sides=sides,
        sheets=sides,
        side_groups=[SideGroup(paper=p, color=c, count=n) for p, c, n in groups],
        identity=identity,
        origin_host=origin_host,
    )


async def test_old_flat_prices_become_version_1_of_the_simple_model(database_url):
    pool = await create_pool(database_url, "pricing")
    try:
        migrations = all_migrations()
        first = [m for m in migrations if m.component == "messaging" or m.number == 1]
        async with pool.acquire() as conn:
            await apply_migrations(conn, "pricing", first)
            await conn.execute(
                "INSERT INTO printers (name, price_per_page, created_at) "
                "VALUES ('old', 0.035, now() - interval '1 day')"
            )
            await apply_migrations(conn, "pricing", migrations)
            view = await handlers.printer_view(Store(conn), "old")
            at = await Store(conn).schedule_at("old", datetime.now(UTC) - timedelta(hours=1))
    finally:
        await pool.close()
    assert view is not None
    assert (view.schedule_version, view.price_per_page) == (1, D("0.035"))
    assert view.cost_model == CostModel(page=D("0.035"))
    assert at == (1, CostModel(page=D("0.035")))


async def test_each_job_is_priced_with_the_version_in_effect_when_it_was_captured(pricing):
    before_any = datetime.now(UTC)
    await pricing.run(handlers.on_add_printer, AddPrinter(name="lab", price_per_page=D("0.10")))
    between = datetime.now(UTC)
    await asyncio.sleep(0.01)
    view = await pricing.run(
        handlers.on_set_cost_model,
        SetCostModel(name="lab", model=CostModel(page=D("0.20"), per_job=D("1"))),
    )
    assert view.schedule_version == 2
    after = datetime.now(UTC)
    for at in (between, after, before_any):
        await pricing.run(handlers.on_job_captured, captured("lab", at, [("A4", False, 3)]))
    priced = await pricing.emitted("job.priced")
    assert [(p.schedule_version, p.cost) for p in priced] == [
        (1, D("0.30")),  # captured under version 1
        (2, D("1.60")),  # 3 x 0.20 + 1.00 per job
        # Captured before the printer had a price (set up while it waited): the first.
        (1, D("0.30")),
    ]
    assert all(isinstance(p, JobPriced) for p in priced)


async def test_add_printer_changes_only_the_page_price(pricing):
    model = CostModel(page=D("0.10"), color_page=D("0.50"), duplex_discount=D("20"))
    await pricing.run(handlers.on_set_cost_model, SetCostModel(name="lab", model=model))
    view = await pricing.run(
        handlers.on_add_printer, AddPrinter(name="lab", price_per_page=D("0.12"))
    )
    assert view.schedule_version == 2
    assert view.cost_model == model.model_copy(update={"page": D("0.12")})


async def test_versions_of_one_printer_never_collide(pricing):
    views = await asyncio.gather(
        *(
            pricing.run(
                handlers.on_set_cost_model,
                SetCostModel(name="lab", model=CostModel(page=D(i))),
            )
            for i in range(8)
        )
    )
    assert sorted(v.schedule_version for v in views) == list(range(1, 9))


async def test_policies_of_the_printer_and_its_groups_apply(pricing):
    await pricing.run(handlers.on_add_printer, AddPrinter(name="lab", price_per_page=D("0.10")))
    await pricing.run(handlers.on_add_printer, AddPrinter(name="other", price_per_page=D("0.10")))
    await pricing.run(
        handlers.on_set_printer_groups, SetPrinterGroups(name="lab", groups=["floor-2"])
    )
    await pricing.run(
        handlers.on_set_policy,
        SetPolicy(scope="group", target="floor-2", policy=Policy(color_groups=["staff"])),
    )
    await pricing.run(
        handlers.on_set_policy,
        SetPolicy(scope="printer", target="lab", policy=Policy(confirm_above_pages=2)),
    )
    view = await pricing.run(handlers.on_show_printer, ShowPrinter(name="lab"))
    assert [(p.scope, p.target) for p in view.policies] == [
        ("printer", "lab"),
        ("group", "floor-2"),
    ]
    now = datetime.now(UTC)
    colour = [("A4", True, 1), ("A4", False, 2)]
    await pricing.run(handlers.on_job_captured, captured("lab", now, colour))
    await pricing.run(handlers.on_job_captured, captured("other", now, colour))
    [denied] = await pricing.emitted("job.denied")
    assert isinstance(denied, JobDenied) and denied.printer == "lab"
    assert denied.denied_by == "pricing"
    assert "(group floor-2 policy)" in denied.reason

    # Once the ledger says alice is staff, her colour job prints, after confirmation.
    await pricing.run(
        handlers.on_user_groups_set, UserGroupsSet(login="alice", groups=["staff", "x"])
    )
    await pricing.run(handlers.on_job_captured, captured("lab", now, colour))
    priced = [p for p in await pricing.emitted("job.priced") if p.printer == "lab"]
    assert len(priced) == 1 and priced[0].confirm is True
    assert priced[0].messages == ["This job prints 3 pages, more than 2: please confirm it."]

    # An empty policy removes it.
    await pricing.run(
        handlers.on_set_policy, SetPolicy(scope="printer", target="lab", policy=Policy())
    )
    view = await pricing.run(handlers.on_show_printer, ShowPrinter(name="lab"))
    assert [(p.scope, p.target) for p in view.policies] == [("group", "floor-2")]


async def test_the_later_groups_announcement_is_kept_whatever_the_delivery_order(pricing):
    async with pricing.pool.acquire() as conn:
        store = Store(conn)
        assert await store.set_user_groups("alice", ["staff", "staff"], 2)
        assert not await store.set_user_groups("alice", ["students"], 1)
        assert await store.user_groups("alice") == {"staff"}
        assert await store.set_user_groups("alice", ["staff"], 2)  # the same again: no harm
        assert await store.set_user_groups("alice", ["students"], 3)
        assert await store.user_groups("alice") == {"students"}


async def test_a_quote_is_priced_like_a_job_and_emits_nothing(pricing):
    model = CostModel(page=D("0.035"), color_page=D("0.25"), duplex_discount=D("10"))
    await pricing.run(handlers.on_set_cost_model, SetCostModel(name="lab", model=model))
    groups = [("A4", False, 20), ("A4", True, 1)]
    quote = await pricing.run(
        handlers.on_quote,
        QuoteJob(
            printer="lab",
            copies=2,
            duplex=True,
            side_groups=[SideGroup(paper=p, color=c, count=n) for p, c, n in groups],
        ),
    )
    await pricing.run(
        handlers.on_job_captured,
        captured("lab", datetime.now(UTC), groups, copies=2, duplex=True),
    )
    [priced] = await pricing.emitted("job.priced")
    assert isinstance(quote, Quote)
    # 40 x 0.035 = 1.40, 2 x 0.25 = 0.50; 1.90 less 10 % = 1.71.
    assert quote.cost == priced.cost == D("1.71")
    assert quote.breakdown == priced.breakdown
    assert quote.schedule_version == priced.schedule_version == 1
    missing = await pricing.run(
        handlers.on_quote,
        QuoteJob(printer="nowhere", side_groups=[SideGroup(paper="A4", color=False, count=1)]),
    )
    assert isinstance(missing, ErrorReply) and "not set up" in missing.error


async def test_unknown_printer_and_policy_target_are_refused(pricing):
    reply = await pricing.run(
        handlers.on_set_policy,
        SetPolicy(scope="printer", target="nowhere", policy=Policy(max_pages=5)),
    )
    assert isinstance(reply, ErrorReply) and "no printer named 'nowhere'" in reply.error
    reply = await pricing.run(
        handlers.on_set_printer_groups, SetPrinterGroups(name="nowhere", groups=["g"])
    )
    assert isinstance(reply, ErrorReply)
    await pricing.run(
        handlers.on_job_captured, captured("nowhere", datetime.now(UTC), [("A4", False, 1)])
    )
    [denied] = await pricing.emitted("job.denied")
    assert denied.reason == "printer 'nowhere' is not set up for charging"


async def test_a_job_without_side_groups_is_priced_by_its_pages(pricing):
    await pricing.run(handlers.on_add_printer, AddPrinter(name="lab", price_per_page=D("0.10")))
    event = captured("lab", datetime.now(UTC), [("A4", False, 4)], copies=2)
    bare = event.model_copy(update={"side_groups": []})
    await pricing.run(handlers.on_job_captured, bare)
    [priced] = await pricing.emitted("job.priced")
    assert (priced.sides, priced.grayscale_sides, priced.cost) == (4, 4, D("0.80"))


async def test_an_unverified_job_is_confirmed_by_its_user_asked_first_whether_they_sent_it(
    pricing,
):
    await pricing.run(handlers.on_add_printer, AddPrinter(name="lab", price_per_page=D("0.10")))
    await pricing.run(
        handlers.on_set_policy,
        SetPolicy(scope="printer", target="lab", policy=Policy(message="Recycle paper")),
    )
    at = datetime.now(UTC)
    jobs = {
        identity: captured("lab", at, [("A4", False, 1)], identity=identity, origin_host="pc7")
        for identity in ("unverified", "present", "trusted", "authenticated", "api")
    }
    for job in jobs.values():
        await pricing.run(handlers.on_job_captured, job)
    priced = {p.job_id: p for p in await pricing.emitted("job.priced")}
    asked = priced[jobs["unverified"].job_id]
    local = at.astimezone().strftime("%H:%M")
    assert asked.confirm is True
    assert asked.messages == [f"Did you print 'doc.pdf' from pc7 at {local}?", "Recycle paper"]
    for identity in ("present", "trusted", "authenticated", "api"):
        proven = priced[jobs[identity].job_id]
        assert (proven.confirm, proven.messages) == (False, ["Recycle paper"]), identity
