"""What `platenctl print --wait` says once a job is final: the watcher's logic alone, its
events set by hand (no broker)."""

import asyncio
from decimal import Decimal

from platen.ctl.watch import JobWatcher
from platen.events.accounts import JobCharged
from platen.events.jobs import JobDenied, JobPrinted


async def test_a_charge_that_comes_after_printing_is_shown():
    watcher = JobWatcher("job-1")
    watcher.final.set_result(JobPrinted.model_construct(pages=3, copies=2))

    async def ledger_later() -> None:
        await asyncio.sleep(0.2)  # the ledger charges in its own transaction, after
        watcher.charged.set_result(
            JobCharged.model_construct(
                sides=3, copies=2, amount=Decimal("0.60"), balance=Decimal("9.40")
            )
        )

    later = asyncio.create_task(ledger_later())
    assert await watcher.outcome(timeout=30) == (
        "printed",
        "3 pages x2, charged 0.60, balance 9.40",
    )
    await later


async def test_printed_without_its_charge_in_time_says_so():
    watcher = JobWatcher("job-1")
    watcher.final.set_result(JobPrinted.model_construct(pages=3, copies=1))
    assert await watcher.outcome(timeout=0.1) == ("printed", "3 pages, its charge not seen yet")


async def test_a_denied_job_gives_its_reason_and_no_outcome_is_unknown():
    watcher = JobWatcher("job-1")
    watcher.final.set_result(JobDenied.model_construct(reason="insufficient funds"))
    assert await watcher.outcome(timeout=1) == ("denied", "insufficient funds")
    assert await JobWatcher("job-2").outcome(timeout=0.1) == ("unknown", "no outcome within 0s")
