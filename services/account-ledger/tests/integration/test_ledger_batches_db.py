"""Charges in batches (the ledger's events queue is batched): several jobs' authorisations
or postings in one transaction decide and charge each job exactly as if it were alone.
Against a real PostgreSQL; the fixture's `verify` checks the ledger after every test."""

from __future__ import annotations

import asyncio
from decimal import Decimal as D

from platen.account_ledger.handlers import accounts, jobs, money
from platen.events.accounts import AddAccount, GrantAccess, ShowAccount, TopUp

from ..builders import priced, printed
from .test_ledger_db import add_user, balance


async def test_each_job_of_a_batch_is_refused_or_charged_as_if_alone(ledger):
    await add_user(ledger, "bob", "1.00")
    fits, too_much, fits_what_is_left = (
        priced("bob", "0.60"),
        priced("bob", "0.50"),
        priced("bob", "0.40"),
    )
    await ledger.run_batch(jobs.on_job_priced, [fits, too_much, fits_what_is_left])
    authorized = await ledger.emitted("job.authorized")
    assert [a.job_id for a in authorized] == [fits.job_id, fits_what_is_left.job_id]
    [denied] = await ledger.emitted("job.denied")
    assert denied.job_id == too_much.job_id and "insufficient credit" in denied.reason
    # Printed, and one of them delivered twice in the same batch: charged once.
    await ledger.run_batch(
        jobs.on_job_printed,
        [printed(fits), printed(fits_what_is_left), printed(fits)],
    )
    charged = await ledger.emitted("job.charged")
    # Each job its own charge event, with the balance right after it.
    assert [(c.job_id, c.amount, c.balance) for c in charged] == [
        (fits.job_id, D("0.60"), D("0.40")),
        (fits_what_is_left.job_id, D("0.40"), D("0.00")),
    ]
    balances = [b.balance for b in await ledger.emitted("account.balance_changed")]
    assert balances[-2:] == [D("0.40"), D("0.00")]  # one balance event per job charged
    assert await balance(ledger, "bob") == D("0.00")


async def test_a_hot_shared_account_charged_in_concurrent_batches_stops_exactly_at_its_floor(
    ledger,
):
    reply = await ledger.run(accounts.on_add_account, AddAccount(name="lab", restricted=True))
    assert reply.restricted
    await ledger.run(accounts.on_grant, GrantAccess(account="lab", groups=["staff"]))
    await ledger.run(money.on_topup, TopUp(key="fund", account="lab", amount=D("10.00")))
    logins = [f"u{i:03d}" for i in range(200)]
    for login in logins:
        await add_user(ledger, login, groups=["staff"], default_account="lab")
    work = [priced(login, "0.30") for login in logins]

    async def in_batches(handler, messages, size=16, workers=4):
        """`workers` transactions in flight at once, each a batch of up to `size`."""
        batches = [messages[i : i + size] for i in range(0, len(messages), size)]

        async def worker():
            while batches:
                await ledger.run_batch(handler, batches.pop(0))

        await asyncio.gather(*(worker() for _ in range(workers)))

    await in_batches(jobs.on_job_priced, work)
    authorized = {a.job_id for a in await ledger.emitted("job.authorized")}
    assert len(authorized) == 33  # 33 x 0.30 = 9.90; a 34th would cross the floor
    assert len(await ledger.emitted("job.denied")) == 167
    held = [j for j in work if j.job_id in authorized]
    # Postings in concurrent batches, with retries of a third of them mixed in.
    await in_batches(jobs.on_job_printed, [printed(j) for j in held + held[:11]], size=8)
    view = await ledger.run(accounts.on_show_account, ShowAccount(account="lab"))
    assert (view.balance, view.held) == (D("0.10"), D("0.00"))
    per_job = await ledger.fetch(
        "SELECT job_id, count(*) AS n FROM transactions WHERE kind = 'charge' GROUP BY job_id"
    )
    assert len(per_job) == 33 and {r["n"] for r in per_job} == {1}
    lowest = await ledger.fetchval(
        "SELECT min(balance_after) FROM entries WHERE account_id = 'shared:lab'"
    )
    assert lowest >= 0  # never below the floor, at any point in the history
    assert len(await ledger.emitted("job.charged")) == 33


async def test_a_batch_that_fails_keeps_nothing_of_any_of_its_jobs(ledger):
    await add_user(ledger, "cy", "5.00")
    good = priced("cy", "0.30")
    missing_user = priced("nobody", "0.30")

    async def failing(ctx, event):
        await jobs.on_job_priced(ctx, event)
        if event.job_id == missing_user.job_id:
            raise RuntimeError("a bug in the middle of a batch")

    try:
        await ledger.run_batch(failing, [good, missing_user])
    except RuntimeError:
        pass
    else:
        raise AssertionError("the batch should have failed")
    assert await ledger.emitted("job.authorized") == []
    assert await ledger.fetchval("SELECT count(*) FROM holds") == 0
    # Handled again alone (what the batch path does next), the good job is held once.
    await ledger.run(jobs.on_job_priced, good)
    assert [a.job_id for a in await ledger.emitted("job.authorized")] == [good.job_id]
