"""Notices in the site's words, and mail queued for those who want it (fake store, no
broker, no mail server: services/notification/tests/integration/test_mail.py sends)."""

from __future__ import annotations

import inspect
import uuid

import pytest

from platen.events.accounts import BalanceLow, UserContactSet
from platen.events.desktop import DeniedNotice, LowBalanceNotice
from platen.events.jobs import JobDenied
from platen.events.notices import SetNoticeTemplate, ShowNoticeTemplates
from platen.events.system import ErrorReply
from platen.notification import handlers, notices
from platen.notification.domain import (
    DEFAULT_TEMPLATES,
    MailOutcome,
    NoticeTemplate,
    retry_delay,
    smtp_outcome,
    template_problem,
)
from platen.notification.store import Store

from .fakes import FakeStore


def test_the_fake_store_has_the_stores_methods():
    def methods(cls) -> set[str]:
        return {n for n, f in inspect.getmembers(cls, inspect.isfunction) if not n.startswith("_")}

    assert methods(Store) - {"__init__"} <= methods(FakeStore)


@pytest.fixture
def mail_on(monkeypatch):
    monkeypatch.setenv("PLATEN_EMAIL_NOTICES", "on")


def denied(job_id: uuid.UUID, document: str = "a.pdf") -> JobDenied:
    return JobDenied(
        job_id=job_id,
        user="bob",
        printer="lab-1",
        document_name=document,
        reason="not enough credit",
        denied_by="account-ledger",
    )


async def contact(ctx, email="bob@example.org", notices_on=True, revision=1) -> None:
    event = UserContactSet(login="bob", email=email, email_notices=notices_on, revision=revision)
    await notices.on_contact_set(ctx, event)


# ----------------------------------------------------------------- templates


def test_the_default_bodies_are_the_clients_english_texts():
    low = NoticeTemplate("low-balance", *DEFAULT_TEMPLATES["low-balance"])
    _, body = low.render({"available": "0.80", "threshold": "1.00", "balance": "0.80"})
    assert body == (
        "Low credit: your available balance is 0.80 (below 1.00). "
        "Ask for a top-up before your next job."
    )
    den = NoticeTemplate("denied", *DEFAULT_TEMPLATES["denied"])
    assert den.render({"document": "a.pdf", "printer": "lab-1", "reason": "no"}) == (
        "Job denied: a.pdf",
        'Denied "a.pdf" on lab-1: no',
    )


@pytest.mark.parametrize(
    ("name", "subject", "body", "problem"),
    [
        ("denied", "x", "{cost}", "names {cost}, which the denied notice does not have"),
        ("low-balance", "{document}", "x", "the subject names {document}"),
        ("denied", "x", "{document.__class__}", "names {document.__class__}"),
        ("denied", "x", "{document[0]}", "names {document[0]}"),
        ("denied", "x", "{document!r}", "names {document!r}"),
        ("denied", "x", "{reason:>99999}", "names {reason:>99999}"),
        ("denied", "x", "{unclosed", "the body is not a valid template"),
        ("denied", "a\nBcc: x@y", "x", "the subject must be one line"),
        ("nothing", "x", "x", "no notice named 'nothing'"),
    ],
)
def test_a_template_naming_what_its_notice_lacks_is_refused(name, subject, body, problem):
    found = template_problem(name, subject, body)
    assert found is not None and problem in found


def test_a_good_template_passes_and_braces_can_be_written():
    assert template_problem("denied", "{login}: {document}", "{{ok}} {reason} on {printer}") is None
    t = NoticeTemplate("denied", "s", "{{ok}} {reason}", custom=True)
    assert t.render({"reason": "no"})[1] == "{ok} no"


def test_a_hostile_value_adds_no_line_and_no_placeholder():
    t = NoticeTemplate("denied", "Denied: {document}", "{document} / {reason}", custom=True)
    hostile = "x\r\nBcc: victim@example.org\n\n{reason}\u2028{login}\x1b[2J"
    subject, body = t.render({"document": hostile, "reason": "R", "login": "bob"})
    assert subject == "Denied: x  Bcc: victim@example.org  {reason} {login} [2J"
    assert "\n" not in subject and "\r" not in body and "\x1b" not in body
    assert body.endswith("/ R")  # {reason} in the name stayed text, not the reason
    long = t.render({"document": "d" * 5000, "reason": "R"})[0]
    assert len(long) <= 320


def test_smtp_codes_decide_retry_or_refusal():
    assert smtp_outcome(550) is MailOutcome.REFUSED
    assert smtp_outcome(554) is MailOutcome.REFUSED
    assert smtp_outcome(451) is MailOutcome.RETRY
    assert smtp_outcome(None) is MailOutcome.RETRY  # no connection
    assert [retry_delay(n) for n in (1, 2, 6, 50)] == [5, 30, 3600, 3600]


# ----------------------------------------------------------------- handlers


async def test_an_administrators_template_sets_the_desktops_text(ctx, store):
    reply = await notices.on_set_template(
        ctx, SetNoticeTemplate(name="denied", body="{login}: {document} refused ({reason})")
    )
    [view] = [t for t in reply.templates if t.name == "denied"]
    assert view.custom and view.subject == DEFAULT_TEMPLATES["denied"][0]
    job_id = uuid.uuid4()
    await handlers.on_job_denied(ctx, denied(job_id))
    [notice] = ctx.messages(DeniedNotice)
    assert notice.text == "bob: a.pdf refused (not enough credit)"

    await notices.on_set_template(ctx, SetNoticeTemplate(name="denied", reset=True))
    shown = await notices.on_show_templates(ctx, ShowNoticeTemplates())
    assert not any(t.custom for t in shown.templates)


async def test_the_built_in_wording_leaves_the_text_to_the_client(ctx, store):
    await handlers.on_job_denied(ctx, denied(uuid.uuid4()))
    await handlers.on_balance_low(
        ctx,
        BalanceLow(account="personal:bob", owner="bob", balance="1", available="1", threshold="2"),
    )
    assert ctx.messages(DeniedNotice)[0].text is None
    assert ctx.messages(LowBalanceNotice)[0].text is None


async def test_an_unknown_placeholder_is_refused_and_nothing_saved(ctx, store):
    reply = await notices.on_set_template(
        ctx, SetNoticeTemplate(name="low-balance", body="{balance} {cost}")
    )
    assert isinstance(reply, ErrorReply)
    assert "{cost}" in reply.error and "{balance}" in reply.error
    assert store.templates == {}


async def test_a_mail_is_queued_once_per_event_for_a_user_who_wants_it(ctx, store, mail_on):
    await contact(ctx)
    job_id = uuid.uuid4()
    await handlers.on_job_denied(ctx, denied(job_id))
    await handlers.on_job_denied(ctx, denied(job_id))  # the same message handled again
    [mail] = await store.mail_outbox()
    assert (mail["recipient"], mail["subject"]) == ("bob@example.org", "Job denied: a.pdf")
    assert mail["body"] == 'Denied "a.pdf" on lab-1: not enough credit'
    assert mail["job_id"] == job_id
    assert len(ctx.effects) == 1  # the sender is woken after the commit


async def test_no_mail_without_the_users_or_the_sites_consent(ctx, store, monkeypatch):
    await contact(ctx, notices_on=False)
    monkeypatch.setenv("PLATEN_EMAIL_NOTICES", "on")
    await handlers.on_job_denied(ctx, denied(uuid.uuid4()))
    await contact(ctx, email=None, revision=2)  # opted in, but no address
    await handlers.on_job_denied(ctx, denied(uuid.uuid4()))
    await contact(ctx, revision=3)
    monkeypatch.setenv("PLATEN_EMAIL_NOTICES", "off")
    await handlers.on_job_denied(ctx, denied(uuid.uuid4()))
    assert await store.mail_outbox() == []
    assert len(ctx.messages(DeniedNotice)) == 3  # the desktop is told every time


async def test_an_older_contact_arriving_late_changes_nothing(ctx, store):
    await contact(ctx, email="new@example.org", notices_on=False, revision=2)
    await contact(ctx, email="old@example.org", notices_on=True, revision=1)
    kept = await store.contact("bob")
    assert (kept.email, kept.email_notices, kept.revision) == ("new@example.org", False, 2)
