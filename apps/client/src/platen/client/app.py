"""Wires the model, the broker transport and one view (GUI, console or JSON)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import OrderedDict
from typing import Protocol

from platen.client.contract import JobPrompt
from platen.client.model import (
    ApplyOptions,
    Choice,
    ClientModel,
    ClosePrompt,
    Effect,
    Notify,
    ShowBalance,
    ShowPrompt,
    UnknownPrompt,
)
from platen.client.serveroptions import Effective
from platen.client.transport import Delivery, Transport
from platen.client.wire import Message

log = logging.getLogger("platen.client")
TICK_SECONDS = 1.0
SEEN_LIMIT = 10_000


class View(Protocol):
    def message(self, message: Message) -> None:
        """Every message as it arrives (the JSON view prints them all)."""

    def show_prompt(self, prompt: JobPrompt) -> None: ...
    def close_prompt(self, job_id: uuid.UUID, text: str) -> None: ...
    def notify(self, note: Notify) -> None: ...
    def show_balance(self, balance: ShowBalance) -> None: ...
    def apply_options(self, options: Effective) -> None:
        """Options from the server changed (title, balance shown or hidden, ...)."""

    def status(self, state: str, detail: str) -> None: ...
    def answer_sent(self, job_id: uuid.UUID, action: str) -> None: ...
    async def run(self, app: ClientApp) -> None:
        """The view's own loop (windows, stdin); returns when the user quits."""


class ClientApp:
    def __init__(self, model: ClientModel, view: View, transport: Transport | None = None):
        self.model = model
        self.view = view
        self.transport = transport
        # The delivery of each prompt not yet closed, acknowledged when it closes.
        self.deliveries: dict[uuid.UUID, Delivery] = {}
        # Ids of the messages shown lately: a message delivered again (after a reconnect,
        # an unacknowledged prompt comes back) is not shown twice.
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._lock = asyncio.Lock()

    def _first_time(self, message_id: str | None) -> bool:
        if not message_id:
            return True
        if message_id in self._seen:
            return False
        self._seen[message_id] = None
        if len(self._seen) > SEEN_LIMIT:
            self._seen.popitem(last=False)
        return True

    async def on_delivery(self, delivery: Delivery) -> None:
        # One message at a time, in queue order: a balance must not be overtaken by an
        # older one, nor two settlements race for the same prompt.
        async with self._lock:
            try:
                await self._handle(delivery)
            except Exception as exc:
                # A message the client cannot show must not stop the ones after it.
                self.view.status("warning", f"message not shown: {exc!r}")
                await delivery.ack()

    async def _handle(self, delivery: Delivery) -> None:
        message = delivery.message
        if not self._first_time(getattr(delivery, "message_id", None)):
            if isinstance(message, JobPrompt) and message.job_id in self.deliveries:
                self.deliveries[message.job_id] = delivery  # the live copy, to ack later
            else:
                await delivery.ack()
            await self.settle()
            return
        job_id = getattr(message, "job_id", None)
        log.debug("received %s%s", message.message_type, f" job_id={job_id}" if job_id else "")
        if not self.model.hides(message):
            self.view.message(message)
        if isinstance(message, JobPrompt):
            self.deliveries[message.job_id] = delivery
        self.apply(self.model.receive(message))
        if not isinstance(message, JobPrompt):
            await delivery.ack()
        await self.settle()

    def apply(self, effects: list[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, ShowPrompt):
                self.view.show_prompt(effect.prompt)
            elif isinstance(effect, ClosePrompt):
                self.view.close_prompt(effect.job_id, effect.text)
            elif isinstance(effect, Notify):
                self.view.notify(effect)
            elif isinstance(effect, ShowBalance):
                self.view.show_balance(effect)
            elif isinstance(effect, ApplyOptions):
                self.view.apply_options(effect.options)

    async def settle(self) -> None:
        """Acknowledge the prompts that are over: closed, expired or finally answered."""
        for job in list(self.deliveries):
            if job not in self.model.prompts and job not in self.model.answered:
                delivery = self.deliveries.pop(job, None)
                if delivery is not None:
                    await delivery.ack()

    def answer(self, job_id: uuid.UUID, choice: Choice, *, apply_to_all: bool = False) -> int:
        """Send the user's answer; returns how many jobs it answered. Raises UnknownPrompt."""
        replies = self.model.answer(job_id, choice, apply_to_all=apply_to_all)
        for reply in replies:
            log.info("answer job_id=%s action=%s", reply.job_id, reply.action)
            if self.transport is not None:
                self.transport.send(reply)
            self.view.answer_sent(reply.job_id, reply.action)
        return len(replies)

    async def tick_forever(self) -> None:
        while True:
            await asyncio.sleep(TICK_SECONDS)
            async with self._lock:
                self.apply(self.model.expire())
                await self.settle()


async def run(app: ClientApp, transport: Transport) -> None:
    """Run until the view returns (the user quits), or the transport does (the server
    signed this desktop out: the view has been told)."""
    connection = asyncio.create_task(transport.run(), name="transport")
    tasks = [connection, asyncio.create_task(app.tick_forever(), name="tick")]
    view = asyncio.create_task(app.view.run(app), name="view")
    try:
        done, _ = await asyncio.wait({view, connection}, return_when=asyncio.FIRST_COMPLETED)
        if view in done:
            view.result()  # what stopped the view stops the client
        else:
            view.cancel()
            await asyncio.gather(view, return_exceptions=True)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await transport.close()


__all__ = ["ClientApp", "UnknownPrompt", "View", "run"]
