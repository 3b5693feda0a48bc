"""Email notices against a real PostgreSQL and a real SMTP server (aiosmtpd on a free
loopback port): queued in the handler's transaction, sent by `MailSender`, once."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid

import pytest

from platen.events.accounts import UserContactSet
from platen.events.base import Envelope
from platen.events.jobs import JobDenied
from platen.events.notices import SetNoticeTemplate
from platen.messaging.handling import apply_in_transaction
from platen.notification import handlers, notices
from platen.notification.mail import MailSender, SmtpSettings, SmtpTransport
from platen.notification.store import Store
from platen.testing.smtp import MailInbox, smtp_server

SENDER_ADDRESS = "platen@print.example.org"


@pytest.fixture
def inbox() -> MailInbox:
    return MailInbox()


@pytest.fixture
def sender(pool, inbox) -> MailSender:
    """A sender to the test's port, with no pause before a retry (the row's next attempt
    is due at once), so a test drives each attempt itself with `send_due`."""
    settings = SmtpSettings("127.0.0.1", inbox.port, "none", SENDER_ADDRESS, timeout=10)
    s = MailSender(batch=10, retry_delays=lambda attempts: 0)
    s.configure(pool, SmtpTransport(settings), lease_seconds=60)
    return s


@pytest.fixture(autouse=True)
def mail_on(monkeypatch):
    monkeypatch.setenv("PLATEN_EMAIL_NOTICES", "on")


async def handle(pool, handler, message, message_id: str | None = None):
    """Handle `message` in a transaction of its own; `message_id` makes it the same
    delivery again (as a redelivery the inbox did not catch would be)."""

    async def as_delivered(ctx, msg):
        if message_id:
            ctx.envelope = dataclasses.replace(ctx.envelope, message_id=message_id)
        return await handler(ctx, msg)

    return await apply_in_transaction(pool, "notification", as_delivered, message, store=Store)


async def bob_wants_mail(pool, *, on: bool = True) -> None:
    contact = UserContactSet(login="bob", email="bob@example.org", email_notices=on, revision=1)
    await handle(pool, notices.on_contact_set, contact)


def denied(document: str = "thesis.pdf") -> JobDenied:
    return JobDenied(
        job_id=uuid.uuid4(),
        user="bob",
        printer="lab-1",
        document_name=document,
        reason="not enough credit",
        denied_by="account-ledger",
    )


async def outbox(pool) -> list:
    async with pool.acquire() as conn:
        return await Store(conn).mail_outbox()


async def test_a_redelivered_event_sends_one_mail(pool, sender, inbox):
    await bob_wants_mail(pool)
    event = denied()
    message_id = Envelope("job.denied", 1, "account-ledger").message_id
    await handle(pool, handlers.on_job_denied, event, message_id)
    await handle(pool, handlers.on_job_denied, event, message_id)
    with smtp_server(inbox):
        assert await sender.send_due() == 1
        assert await sender.send_due() == 0
    [msg] = inbox.messages()
    assert inbox.envelopes[0].rcpt_tos == ["bob@example.org"]
    assert (msg["From"], msg["To"]) == (SENDER_ADDRESS, "bob@example.org")
    assert msg["Subject"] == "Job denied: thesis.pdf"
    assert msg.get_content().strip() == 'Denied "thesis.pdf" on lab-1: not enough credit'
    [row] = await outbox(pool)
    assert (row["state"], row["attempts"], row["job_id"]) == ("sent", 1, event.job_id)


async def test_a_mail_server_down_then_up_loses_nothing(pool, sender, inbox):
    await bob_wants_mail(pool)
    await handle(pool, handlers.on_job_denied, denied("one.pdf"))
    await handle(pool, handlers.on_job_denied, denied("two.pdf"))
    # Nothing listens on the port: both stay, to be tried again.
    assert await sender.send_due() == 2
    rows = await outbox(pool)
    assert [(r["state"], r["attempts"]) for r in rows] == [("pending", 1), ("pending", 1)]
    assert all("could not reach the mail server" in r["last_error"] for r in rows)
    inbox.refuse = "451 4.3.0 try again later"  # up, but not taking mail yet
    with smtp_server(inbox):
        assert await sender.send_due() == 2
        assert [r["attempts"] for r in await outbox(pool)] == [2, 2]
        inbox.refuse = None
        assert await sender.send_due() == 2
    assert sorted(m["Subject"] for m in inbox.messages()) == [
        "Job denied: one.pdf",
        "Job denied: two.pdf",
    ]
    assert [r["state"] for r in await outbox(pool)] == ["sent", "sent"]


async def test_a_permanent_refusal_is_recorded_and_not_retried(pool, sender, inbox):
    await bob_wants_mail(pool)
    await handle(pool, handlers.on_job_denied, denied())
    inbox.refuse = "550 5.1.1 no such user here"
    with smtp_server(inbox):
        assert await sender.send_due() == 1
        assert await sender.send_due() == 0  # never claimed again
    [row] = await outbox(pool)
    assert (row["state"], row["attempts"]) == ("refused", 1)
    assert row["last_error"].startswith("550 5.1.1 no such user here")
    assert inbox.envelopes == []


async def test_a_user_who_opted_out_gets_no_mail(pool, sender, inbox):
    await bob_wants_mail(pool, on=False)
    await handle(pool, handlers.on_job_denied, denied())
    assert await outbox(pool) == []
    with smtp_server(inbox):
        assert await sender.send_due() == 0
    assert inbox.envelopes == []


async def test_a_hostile_document_name_adds_no_header_and_no_recipient(pool, sender, inbox):
    await bob_wants_mail(pool)
    await handle(
        pool,
        notices.on_set_template,
        SetNoticeTemplate(name="denied", subject="Refused: {document}", body="{document}"),
    )
    hostile = "x.pdf\r\nBcc: victim@example.org\r\n\r\n{reason}"
    await handle(pool, handlers.on_job_denied, denied(hostile))
    with smtp_server(inbox):
        assert await sender.send_due() == 1
    [msg] = inbox.messages()
    assert inbox.envelopes[0].rcpt_tos == ["bob@example.org"]
    assert msg["Bcc"] is None
    assert msg["Subject"] == "Refused: x.pdf  Bcc: victim@example.org    {reason}"
    assert msg.get_content().strip() == "x.pdf  Bcc: victim@example.org    {reason}"


async def test_two_replicas_send_each_mail_once(pool, sender, inbox):
    await bob_wants_mail(pool)
    for n in range(6):
        await handle(pool, handlers.on_job_denied, denied(f"{n}.pdf"))
    other = MailSender(batch=10, retry_delays=lambda attempts: 0)
    other.configure(pool, sender.transport, lease_seconds=60)
    sender.batch = other.batch = 2  # several claims each, interleaved
    with smtp_server(inbox):

        async def drain(s: MailSender) -> int:
            total = 0
            while claimed := await s.send_due():
                total += claimed
            return total

        counts = await asyncio.gather(drain(sender), drain(other))
    assert sum(counts) == 6
    subjects = sorted(m["Subject"] for m in inbox.messages())
    assert subjects == sorted(f"Job denied: {n}.pdf" for n in range(6))
