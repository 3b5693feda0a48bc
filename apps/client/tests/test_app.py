"""The client's handling of deliveries: order, acknowledgement, and errors."""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from platen.client.app import ClientApp
from platen.client.contract import (
    AnswerResult,
    BalanceNotice,
    JobPrompt,
    PromptAccount,
    PromptClosed,
)
from platen.client.model import Choice, ClientModel
from platen.client.textviews import JsonView


class Delivery:
    def __init__(self, message, message_id=None) -> None:
        self.message = message
        self.message_id = message_id or str(uuid.uuid4())
        self.acks = 0

    async def ack(self) -> None:
        await asyncio.sleep(0)  # as a real ack does, it lets other tasks run
        self.acks += 1


class Sent:
    def __init__(self) -> None:
        self.replies = []

    def send(self, reply) -> None:
        self.replies.append(reply)


def prompt() -> JobPrompt:
    return JobPrompt(
        job_id=uuid.uuid4(),
        kind="confirm",
        document_name="a.pdf",
        printer="lab-1",
        sides=1,
        color_sides=0,
        grayscale_sides=1,
        copies=1,
        duplex=False,
        cost=Decimal("0.10"),
        accounts=[PromptAccount(account="personal:bob", path="bob", charge_rate=Decimal(1))],
        allow_pin=False,
        expires_at=datetime.now(UTC) + timedelta(minutes=5),
    )


def app() -> tuple[ClientApp, io.StringIO]:
    out = io.StringIO()
    return ClientApp(ClientModel("bob"), JsonView(out=out), Sent()), out


async def test_outcome_and_close_arriving_together_ack_the_prompt_once():
    a, _ = app()
    p = prompt()
    first = Delivery(p)
    await a.on_delivery(first)
    a.answer(p.job_id, Choice("print"))
    result = AnswerResult(job_id=p.job_id, outcome="authorized", amount=Decimal("0.10"))
    closed = PromptClosed(job_id=p.job_id, document_name="a.pdf", outcome="authorized", reason="ok")
    # The consumer may run both at once: they must not both settle the prompt.
    await asyncio.gather(a.on_delivery(Delivery(result)), a.on_delivery(Delivery(closed)))
    assert first.acks == 1 and a.deliveries == {}


async def test_balances_are_shown_in_queue_order():
    a, out = app()
    older = Delivery(BalanceNotice(balance=Decimal("5.00"), available=Decimal("4.70")))
    newer = Delivery(BalanceNotice(balance=Decimal("4.70"), available=Decimal("4.70")))
    await asyncio.gather(a.on_delivery(older), a.on_delivery(newer))
    assert a.model.balance.balance == Decimal("4.70")
    assert [json.loads(line)["balance"] for line in out.getvalue().splitlines()] == [
        "5.00",
        "4.70",
    ]


async def test_a_redelivered_message_is_shown_once_and_acknowledged():
    a, out = app()
    notice = BalanceNotice(balance=Decimal("1.00"), available=Decimal("1.00"))
    first, again = Delivery(notice, "m-1"), Delivery(notice, "m-1")
    await a.on_delivery(first)
    await a.on_delivery(again)
    assert len(out.getvalue().splitlines()) == 1
    assert first.acks == 1 and again.acks == 1


async def test_a_message_the_view_cannot_show_is_acknowledged_and_does_not_stop_the_rest():
    a, out = app()

    def broken(message):
        raise RuntimeError("no display")

    a.view.message = broken
    bad = Delivery(BalanceNotice(balance=Decimal("1.00"), available=Decimal("1.00")))
    await a.on_delivery(bad)
    assert bad.acks == 1
    assert "message not shown: RuntimeError('no display')" in out.getvalue()
