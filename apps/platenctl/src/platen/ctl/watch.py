"""Follow one job's events until it reaches a final state."""

from __future__ import annotations

import asyncio

from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from platen.events.accounts import JobCharged
from platen.events.base import HEADER_VERSION
from platen.events.jobs import JobCancelled, JobDenied, JobFailed, JobPrinted
from platen.events.registry import ContractError, decode
from platen.events.routing import EVENTS

# The events that end a job (and its charge), by their models: the keys follow the contract.
FINAL = (JobPrinted, JobDenied, JobFailed, JobCancelled, JobCharged)
KEYS = tuple(model.message_type for model in FINAL)


class JobWatcher:
    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        self.final: asyncio.Future = asyncio.get_running_loop().create_future()
        self.charged: asyncio.Future = asyncio.get_running_loop().create_future()

    async def on_event(self, raw: AbstractIncomingMessage) -> None:
        if raw.correlation_id != self.job_id:
            return
        try:
            event = decode(raw.type, (raw.headers or {}).get(HEADER_VERSION), raw.body)
        except ContractError:
            return
        target = self.charged if isinstance(event, JobCharged) else self.final
        if not target.done():
            target.set_result(event)

    async def outcome(self, timeout: float) -> tuple[str, str]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            event = await asyncio.wait_for(asyncio.shield(self.final), timeout)
        except TimeoutError:
            return "unknown", f"no outcome within {timeout:.0f}s"
        if isinstance(event, JobPrinted):
            # The ledger charges right after printing, in its own transaction (a busy or
            # restarting ledger takes longer): show the charge if it comes within what is
            # left of the wait, and at least a second.
            try:
                left = max(deadline - loop.time(), 1.0)
                charge = await asyncio.wait_for(asyncio.shield(self.charged), left)
            except TimeoutError:
                return "printed", f"{event.pages} pages, its charge not seen yet"
            return "printed", (
                f"{charge.sides} pages x{charge.copies}, charged {charge.amount}, "
                f"balance {charge.balance}"
            )
        if isinstance(event, JobDenied | JobFailed | JobCancelled):
            state = {JobDenied: "denied", JobFailed: "failed", JobCancelled: "cancelled"}
            return state[type(event)], event.reason
        return "unknown", ""


async def watch_job(channel: AbstractChannel, job_id: str) -> JobWatcher:
    """Start listening before the job is submitted, so no event can be missed."""
    watcher = JobWatcher(job_id)
    queue = await channel.declare_queue(exclusive=True, auto_delete=True)
    for key in KEYS:
        await queue.bind(EVENTS, routing_key=key)
    await queue.consume(watcher.on_event, no_ack=True)
    return watcher
