"""The terminal views: what they print, and how typed answers reach the model."""

from __future__ import annotations

import io
import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from platen.client.app import ClientApp
from platen.client.contract import JobPrompt, PromptAccount
from platen.client.model import ClientModel
from platen.client.textviews import ConsoleView, JsonView


class Sent:
    def __init__(self) -> None:
        self.replies = []

    def send(self, reply) -> None:
        self.replies.append(reply)


class Delivery:
    def __init__(self, message) -> None:
        self.message = message

    async def ack(self) -> None:
        pass


def prompt(**kw) -> JobPrompt:
    fields = dict(
        job_id=uuid.uuid4(),
        kind="choose_account",
        document_name="thesis.pdf",
        printer="lab-1",
        sides=10,
        color_sides=2,
        grayscale_sides=8,
        copies=1,
        duplex=True,
        cost=Decimal("1.40"),
        accounts=[
            PromptAccount(account="personal:bob", path="bob", charge_rate=Decimal(1)),
            PromptAccount(account="shared:acme", path="clients/acme", charge_rate=Decimal(1)),
        ],
        allow_pin=True,
        expires_at=datetime.now(UTC) + timedelta(minutes=5),
        messages=["Colour pages are charged 0.30 each."],
    )
    fields.update(kw)
    return JobPrompt(**fields)


async def test_console_shows_the_prompt_and_takes_a_numbered_answer():
    out = io.StringIO()
    view = ConsoleView(out=out)
    app = ClientApp(ClientModel("bob"), view, Sent())
    p = prompt()
    await app.on_delivery(Delivery(p))
    text = out.getvalue()
    assert "[1] Job waiting for you to choose the account that pays:" in text
    assert "Pages: 10 pages (2 colour, 8 grayscale)" in text and "Duplex: yes" in text
    assert "account=shared:acme  (clients/acme, rate 1)" in text
    assert "Note: Colour pages are charged 0.30 each." in text
    view.handle_line(app, "print 2")
    assert "? no such job is waiting for your answer" in out.getvalue()
    view.handle_line(app, "print 1 account=shared:acme comment=thesis")
    [reply] = app.transport.replies
    assert (reply.job_id, reply.account, reply.comment) == (p.job_id, "shared:acme", "thesis")
    assert f"sent: print job {p.job_id}" in out.getvalue()


async def test_json_view_prints_every_message_and_explains_bad_lines():
    out = io.StringIO()
    view = JsonView(out=out)
    app = ClientApp(ClientModel("bob"), view, Sent())
    p = prompt()
    await app.on_delivery(Delivery(p))
    view.handle_line(app, '{"job_id": "nope", "action": "print"}')
    view.handle_line(app, json.dumps({"job_id": str(p.job_id), "action": "cancel"}))
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines[0]["type"] == "desktop.job_prompt" and lines[0]["job_id"] == str(p.job_id)
    assert lines[1]["type"] == "client.error" and "job_id" in lines[1]["error"]
    assert lines[2] == {"type": "client.answer_sent", "job_id": str(p.job_id), "action": "cancel"}
    assert [r.action for r in app.transport.replies] == ["cancel"]


async def test_console_puts_the_identity_question_above_the_job():
    out = io.StringIO()
    view = ConsoleView(out=out)
    app = ClientApp(ClientModel("bob"), view, Sent())
    question = "Did you print 'thesis.pdf' from 10.0.0.7 at 14:02?"
    await app.on_delivery(Delivery(prompt(kind="confirm", messages=[question, "Recycle"])))
    lines = out.getvalue().splitlines()
    assert lines[0] == f"[1] !!! {question}"
    assert "cancel 1" in lines[1] and "someone used your name" in lines[1]
    assert lines[2] == "[1] Job waiting for you to confirm:"
    assert "    Note: Recycle" in lines and not any(question in ln for ln in lines[2:])


async def test_console_shows_codes_visible_balances_and_how_many_jobs_wait():
    out = io.StringIO()
    view = ConsoleView(out=out)
    app = ClientApp(ClientModel("bob"), view, Sent())
    view.app = app  # as `run` sets it
    accounts = [
        PromptAccount(
            account="personal:bob", path="bob", charge_rate=Decimal(1), available=Decimal("2")
        ),
        PromptAccount(
            account="shared:acme", path="clients/acme", charge_rate=Decimal(1), code="AC-1"
        ),
        PromptAccount(
            account="shared:lab",
            path="lab",
            charge_rate=Decimal("1.5"),
            code="L7",
            available=Decimal("20.00"),
        ),
    ]
    first, second = prompt(accounts=accounts), prompt(accounts=accounts)
    await app.on_delivery(Delivery(first))
    assert "waiting jobs" not in out.getvalue()  # one job: nothing to say
    await app.on_delivery(Delivery(second))
    text = out.getvalue()
    assert "account=shared:acme  (clients/acme, code AC-1, rate 1)" in text
    assert "account=shared:lab  (lab, code L7, available 20.00, rate 1.5)" in text
    assert "account=personal:bob  (bob, available 2, rate 1)" in text
    assert "(add 'all' to answer your 2 waiting jobs)" in text.splitlines()[-1]
    # A code the prompt offers is sent as its account (the server checks it either way),
    # so "all" finds the same account in the other job.
    view.handle_line(app, "print 2 account=l7 all")
    assert [(r.job_id, r.account) for r in app.transport.replies] == [
        (second.job_id, "shared:lab"),
        (first.job_id, "shared:lab"),
    ]
