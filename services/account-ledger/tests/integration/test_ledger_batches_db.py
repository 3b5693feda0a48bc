"""Charges in batches (the ledger's events queue is batched): several jobs' authorisations
or postings in one transaction decide and charge each job exactly as if it were alone.
Against a real PostgreSQL; the fixture's `verify` checks the ledger after every test."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import uuid
from contextlib import asynccontextmanager
from decimal import Decimal as D

import asyncpg

from platen.account_ledger import domain
from platen.account_ledger.handlers import accounts, jobs, money
from platen.account_ledger.store import PostedBefore, Store
from platen.events.accounts import AddAccount, GrantAccess, ShowAccount, TopUp
from platen.messaging.batching import apply_batch_in_transaction

from ..builders import cancelled, priced, printed
from .test_ledger_db import add_user, balance


async def test_each_job_of_a_batch_is_refused_or_charged_as_if_alone(ledger):
    await add_user(ledger, "bob", "1.00")
    fits, too_much, fits_what_is_left = (
        priced("bob", "0.60"),
        priced("bob", "0.50"),
        priced("bob", "0.40"),
    )
    seen = len(await ledger.emitted("account.balance_changed"))  # bob's first balance
    await ledger.run_batch(jobs.on_job_priced, [fits, too_much, fits_what_is_left])
    # One balance event for the batch's account, with what the batch leaves held: a
    # desktop shows the latest balance, not each step.
    [changed] = (await ledger.emitted("account.balance_changed"))[seen:]
    assert (changed.account, changed.balance, changed.available) == (
        "personal:bob",
        D("1.00"),
        D("0.00"),
    )
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
    # Again one balance event for the batch's account, after both charges (each job's
    # charge event above carries its own balance).
    changed = (await ledger.emitted("account.balance_changed"))[seen + 1 :]
    assert [(c.account, c.balance, c.available) for c in changed] == [
        ("personal:bob", D("0.00"), D("0.00"))
    ]
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


async def _hot_lab(ledger, funds: str, users: int) -> list[str]:
    """A restricted shared account `lab` with `funds`, and `users` users who charge it
    without being asked."""
    await ledger.run(accounts.on_add_account, AddAccount(name="lab", restricted=True))
    await ledger.run(accounts.on_grant, GrantAccess(account="lab", groups=["staff"]))
    await ledger.run(money.on_topup, TopUp(key="fund", account="lab", amount=D(funds)))
    logins = [f"u{i:03d}" for i in range(users)]
    for login in logins:
        await add_user(ledger, login, groups=["staff"], default_account="lab")
    return logins


async def test_batches_single_jobs_and_cancellations_at_once_keep_a_hot_account_exact(ledger):
    """The batch store keeps locks and rows it has read for the whole batch; whatever runs
    beside it on the same account (other batches, jobs alone, cancellations that void holds
    without the account's lock, a batch delivered twice) must still see every job decided
    and charged exactly once, and the floor kept."""
    logins = await _hot_lab(ledger, "6.00", 60)
    work = [priced(login, "0.30") for login in logins]
    batched, alone = work[:40], work[40:]
    batches = [batched[i : i + 8] for i in range(0, 40, 8)]
    await asyncio.gather(
        *(ledger.run_batch(jobs.on_job_priced, b) for b in batches),
        *(ledger.run(jobs.on_job_priced, job) for job in alone),
        ledger.run_batch(jobs.on_job_priced, batches[0]),  # delivered twice
    )
    authorized = [a.job_id for a in await ledger.emitted("job.authorized")]
    assert len(authorized) == len(set(authorized)) == 20  # 20 x 0.30 = 6.00, then the floor
    # Every other job denied, none both. A denial leaves no mark (nothing was held), so a
    # job denied in the batch delivered twice is denied again by its second delivery,
    # with the same reason, if that batch came after the funds were gone (the services'
    # inbox drops a real redelivery before this). Only those jobs are denied twice.
    denied = [d.job_id for d in await ledger.emitted("job.denied")]
    assert set(denied) == {j.job_id for j in work} - set(authorized)
    twice = {job for job in denied if denied.count(job) > 1}
    assert twice <= {j.job_id for j in batches[0]}
    assert all(denied.count(job) == 2 for job in twice)
    held = [j for j in work if j.job_id in set(authorized)]
    random.Random(14).shuffle(held)
    voided, raced, charged = held[:5], held[5:8], held[8:]
    # Voids on their own, postings in batches (one delivered twice), and three jobs both
    # printed in a batch and cancelled alone at the same moment.
    posting_batches = [charged[i : i + 4] + raced[i // 4 : i // 4 + 1] for i in range(0, 12, 4)]
    await asyncio.gather(
        *(ledger.run(jobs.on_job_not_printed, cancelled(j)) for j in voided + raced),
        *(ledger.run_batch(jobs.on_job_printed, [printed(j) for j in b]) for b in posting_batches),
        ledger.run_batch(jobs.on_job_printed, [printed(j) for j in posting_batches[0]]),
    )
    states = {
        r["job_id"]: r["state"] for r in await ledger.fetch("SELECT job_id, state FROM holds")
    }
    charges = {
        r["job_id"]
        for r in await ledger.fetch("SELECT job_id FROM transactions WHERE kind = 'charge'")
    }
    assert all(states[j.job_id] == "voided" for j in voided)
    assert all(states[j.job_id] == "posted" for j in charged)
    for job in raced:  # charged, or released: never both, never neither
        assert (states[job.job_id], job.job_id in charges) in {("posted", True), ("voided", False)}
    assert len(charges) == len(await ledger.emitted("job.charged"))
    view = await ledger.run(accounts.on_show_account, ShowAccount(account="lab"))
    assert view.held == D("0.00")
    assert view.balance == D("6.00") - D("0.30") * len(charges)
    lowest = await ledger.fetchval(
        "SELECT min(balance_after) FROM entries WHERE account_id = 'shared:lab'"
    )
    assert lowest >= 0


@asynccontextmanager
async def _counted(ledger):
    """A pool of the ledger's one connection, and the list of statements it is sent."""
    sent: list = []

    class One:
        def __init__(self, conn):
            self.conn = conn

        @asynccontextmanager
        async def acquire(self):
            yield self.conn

    async with ledger.pool.acquire() as conn:
        conn.add_query_logger(sent.append)
        try:
            yield One(conn), sent
        finally:
            conn.remove_query_logger(sent.append)


async def test_a_batch_on_one_account_locks_and_reads_its_rows_once_not_once_per_job(ledger):
    """Statements sent for a batch of 8 jobs and for one of 24, each job of another user
    on the same shared account: a job more costs no statement at all, to authorise or to
    post: locks, users, groups, job marks, holds read, the account's figures, inbox and
    outbox rows are per batch, and so are the holds made (one statement), the charges'
    transactions with their entries (one) and the holds' new states (one). (Session 13:
    1 and 2 a job; before, about 17 and 12.)"""
    logins = await _hot_lab(ledger, "100.00", 36)
    counts = {}
    # The first batch warms the connection (asyncpg asks the database about a statement's
    # types the first time it sees it), as a running service's is.
    for size, users in ((4, logins[32:]), (8, logins[:8]), (24, logins[8:32])):
        work = [priced(login, "0.30") for login in users]
        async with _counted(ledger) as (pool, sent):
            for handler, messages in (
                (jobs.on_job_priced, work),
                (jobs.on_job_printed, [printed(j) for j in work]),
            ):
                sent.clear()
                steps = [(handler, m) for m in messages]
                await apply_batch_in_transaction(pool, "account-ledger", steps, store=Store)
                counts[size, handler.__name__] = len(sent)
    assert len(await ledger.emitted("job.charged")) == 36
    authorise = (counts[24, "on_job_priced"] - counts[8, "on_job_priced"]) / 16
    post = (counts[24, "on_job_printed"] - counts[8, "on_job_printed"]) / 16
    assert authorise == 0, counts
    assert post == 0, counts
    assert counts[24, "on_job_priced"] + counts[24, "on_job_printed"] <= 24, counts


async def _mixed_lab(ledger, name: str, users: int) -> list[str]:
    """A restricted shared account `name` with 2.00, charged by `users` users of its
    group without being asked."""
    await ledger.run(accounts.on_add_account, AddAccount(name=name, restricted=True))
    await ledger.run(accounts.on_grant, GrantAccess(account=name, groups=[name]))
    await ledger.run(money.on_topup, TopUp(key=name, account=name, amount=D("2.00")))
    logins = [f"{name}{i}" for i in range(users)]
    for login in logins:
        await add_user(ledger, login, groups=[name, "all"], default_account=name)
    return logins


async def _what_was_written(ledger, account: str, work: list) -> dict:
    """Every row the jobs of `work` left on `shared:<account>`, by the job's place in it
    (ids differ), with the account's own group named `lab`."""
    place = {job.job_id: i for i, job in enumerate(work)}
    holds = await ledger.fetch(
        "SELECT job_id, state, amount, user_login, user_groups, color_sides, "
        "grayscale_sides, pages, comment FROM holds WHERE account_id = $1",
        f"shared:{account}",
    )
    entries = await ledger.fetch(
        "SELECT t.job_id, t.kind, e.amount, e.balance_after FROM entries e "
        "JOIN transactions t ON t.id = e.transaction_id WHERE e.account_id = $1 "
        "AND t.job_id IS NOT NULL ORDER BY e.id",
        f"shared:{account}",
    )
    outcome = {}
    for kind in ("job.authorized", "job.denied", "job.charged"):
        outcome[kind] = sorted(
            place[m.job_id] for m in await ledger.emitted(kind) if m.job_id in place
        )

    def hold(r):
        groups = [g.replace(account, "lab") for g in r["user_groups"]]
        user = r["user_login"].replace(account, "lab")
        return (place[r["job_id"]], r["state"], r["amount"], user, groups, *r[5:])

    def entry(r):
        return (place[r["job_id"]], r["kind"], r["amount"], r["balance_after"])

    return {
        "holds": sorted(map(hold, holds)),
        "entries": list(map(entry, entries)),
        **outcome,
    }


async def test_a_batch_writes_its_holds_and_charges_together_exactly_as_one_at_a_time(ledger):
    """The batch store writes a batch's holds in one statement and its charges and holds'
    states in two more, at the end (`Store.flush`). The same work, one message per
    transaction on one account and in batches on another, leaves the same rows: the same
    jobs held, denied (the floor crossed by the second and fifth jobs) and charged, each
    hold with its groups and colour split, the same entries with the same running balance;
    and in a batch that mixes postings, a cancellation and a new price that fits only
    once the cancelled job's funds are free, the new hold is decided after the void, as
    alone."""
    alone_users = await _mixed_lab(ledger, "alone", 7)
    batch_users = await _mixed_lab(ledger, "batch", 7)
    costs = ["0.60", "1.50", "0.70", "0.40", "0.50", "0.20"]

    def work_of(logins):
        return [
            priced(login, cost, color_sides=1, grayscale_sides=2)
            for login, cost in zip(logins, costs, strict=False)
        ]

    alone, batch = work_of(alone_users), work_of(batch_users)
    # After: 0.60 + 0.70 + 0.40 + 0.20 held of 2.00 (1.50 and 0.50 denied).
    late = {
        "alone": priced(alone_users[6], "0.50", color_sides=0, grayscale_sides=3),
        "batch": priced(batch_users[6], "0.50", color_sides=0, grayscale_sides=3),
    }

    def settle_steps(jobs_of, late_job):
        # Charge the first, cancel the third (0.70 free again: 0.50 now fits), price the
        # late job, charge the fourth and the sixth.
        return [
            (jobs.on_job_printed, printed(jobs_of[0])),
            (jobs.on_job_not_printed, cancelled(jobs_of[2])),
            (jobs.on_job_priced, late_job),
            (jobs.on_job_printed, printed(jobs_of[3])),
            (jobs.on_job_printed, printed(jobs_of[5])),
        ]

    for job in alone:
        await ledger.run(jobs.on_job_priced, job)
    for handler, message in settle_steps(alone, late["alone"]):
        await ledger.run(handler, message)
    await ledger.run_batch(jobs.on_job_priced, batch)
    await apply_batch_in_transaction(
        ledger.pool, "account-ledger", settle_steps(batch, late["batch"]), store=Store
    )

    one_at_a_time = await _what_was_written(ledger, "alone", [*alone, late["alone"]])
    in_batches = await _what_was_written(ledger, "batch", [*batch, late["batch"]])
    assert in_batches == one_at_a_time
    assert in_batches["job.denied"] == [1, 4]
    assert in_batches["job.authorized"] == [0, 2, 3, 5, 6]
    assert in_batches["job.charged"] == [0, 3, 5]
    assert [h[1] for h in in_batches["holds"]] == [
        "posted", "voided", "posted", "posted", "pending",
    ]  # fmt: skip
    assert in_batches["holds"][0][3:6] == ("lab0", ["all", "lab"], 1)
    assert [e[3] for e in in_batches["entries"]] == [D("1.40"), D("1.00"), D("0.80")]
    for account in ("alone", "batch"):
        view = await ledger.run(accounts.on_show_account, ShowAccount(account=account))
        assert (view.balance, view.held) == (D("0.80"), D("0.50"))


async def test_holds_a_batch_put_off_are_still_refused_by_the_database_below_the_floor(ledger):
    """The handlers decide a batch's holds in memory and the store writes them at the end:
    were that decision wrong, the database's own floor check, row by row in the one
    statement, refuses the batch (which is then rolled back and handled one message at a
    time). Holds written straight through the store, past the domain: 3 x 0.80 on 2.00."""
    await _mixed_lab(ledger, "lab", 1)
    async with ledger.pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            store = Store(conn)
            store.defer_writes()
            await store.lock_accounts(["shared:lab"])
            account = await store.account("shared:lab")
            first = domain.hold_for(priced("lab0", "0.80"), "lab0", account, groups=["lab"])
            assert isinstance(first, domain.Hold)
            for _ in range(3):  # as if the domain had let each pass
                hold = dataclasses.replace(first, job_id=uuid.uuid4())
                account.balance, account.held, _ = await store.add_hold(hold)
            assert account.held == D("2.40")  # what the batch believes, not yet written
            assert await conn.fetchval("SELECT count(*) FROM holds") == 0
            try:
                await store.flush()
            except asyncpg.CheckViolationError as exc:
                assert "below its floor" in str(exc)
            else:
                raise AssertionError("the database should have refused the third hold")
        finally:
            await tx.rollback()
    assert await ledger.fetchval("SELECT count(*) FROM holds") == 0


async def test_a_charge_posted_before_fails_the_batch_that_put_it_off_and_alone_charges_once(
    ledger,
):
    """A batch puts off its charges and counts them in the balances it reports; were a
    charge's key taken already (posted before, while its hold is still pending), the batch
    must not commit those figures: it fails (`PostedBefore`), keeping nothing, and the job
    alone finds the charge there and takes nothing more."""
    [login] = await _mixed_lab(ledger, "lab", 1)
    job = priced(login, "0.30")
    await ledger.run(jobs.on_job_priced, job)
    async with ledger.pool.acquire() as conn, conn.transaction():
        await Store(conn).post(
            domain.Posting(
                op_key=f"job:{job.job_id}:charge",
                kind="charge",
                description="posted by someone else first",
                entries={"shared:lab": D("-0.30"), domain.revenue_account(job.job_id): D("0.30")},
                job_id=job.job_id,
            )
        )
    try:
        await ledger.run_batch(jobs.on_job_printed, [printed(job), printed(job)])
    except PostedBefore:
        pass
    else:
        raise AssertionError("the batch should have failed")
    assert await ledger.emitted("job.charged") == []
    await ledger.run(jobs.on_job_printed, printed(job))
    view = await ledger.run(accounts.on_show_account, ShowAccount(account="lab"))
    assert (view.balance, view.held) == (D("1.70"), D("0.00"))
    assert await ledger.fetchval("SELECT count(*) FROM transactions WHERE kind = 'charge'") == 1
