"""An administrator's user and job commands end to end: platenctl over the broker, the
services as processes."""

from __future__ import annotations

import csv
import io
import json
import uuid
from decimal import Decimal as D

import pytest

from platen import rpc
from platen.events.accounts import AnswerJob
from platen.events.desktop import PromptClosed
from platen.testing.documents import make_pdf
from platen.testing.smtp import MailInbox, smtp_server
from tests.e2e.helpers import EventRecorder, eventually, query


@pytest.fixture
def mail_inbox():
    """A real SMTP server the notification service mails notices to (see
    `extra_service_env`), started before the services."""
    inbox = MailInbox()
    with smtp_server(inbox):
        yield inbox


@pytest.fixture
def extra_service_env(mail_inbox) -> dict[str, str]:
    return {
        "PLATEN_EMAIL_NOTICES": "on",
        "PLATEN_SMTP_HOST": "127.0.0.1",
        "PLATEN_SMTP_PORT": str(mail_inbox.port),
        "PLATEN_SMTP_SECURITY": "none",
        "PLATEN_SMTP_FROM": "platen@print.example.org",
    }


def pdf(system, pages: int = 2) -> str:
    path = system.tmp / f"doc{pages}.pdf"
    path.write_bytes(make_pdf(pages))
    return str(path)


async def test_user_list_disable_and_enable(mail_inbox, extra_service_env, system):
    system.ctl("printer", "add", "lab-1", "--price-per-page", "0.10")
    system.ctl("user", "add", "mia", "--balance", "4.00", "--group", "staff")
    system.ctl("user", "add", "ada", "--balance", "2.50", "--group", "staff", "--group", "lab")
    system.ctl("user", "add", "zed", "--unrestricted")
    # zed wants notices by email, in the site's words.
    shown = system.ctl("user", "set", "zed", "--email", "zed@example.org", "--email-notices", "on")
    assert "email zed@example.org (notices by email)" in shown.stdout
    system.ctl("notice", "template", "set", "denied", "--subject", "Not printed: {document}")
    bad = system.ctl("notice", "template", "set", "denied", "--body", "{cost}", check=False)
    assert bad.returncode == 1 and "{cost}" in bad.stderr

    async def contact_kept() -> bool:
        log = system.services.log("notification")
        return any('"contact kept"' in ln and '"zed"' in ln for ln in log.splitlines())

    assert await eventually(contact_kept, timeout=60)

    out = system.ctl("user", "disable", "zed")
    assert "disabled" in out.stdout
    denied = system.ctl(
        "print", pdf(system), "--user", "zed", "--printer", "lab-1", "--wait", check=False
    )
    assert denied.returncode == 2 and "disabled" in denied.stdout

    async def mailed() -> bool:
        return bool(mail_inbox.envelopes)

    assert await eventually(mailed, timeout=60)
    [mail] = mail_inbox.messages()
    assert mail_inbox.envelopes[0].rcpt_tos == ["zed@example.org"]
    assert mail["Subject"] == "Not printed: doc2.pdf" and "disabled" in mail.get_content()

    listed = json.loads(system.ctl("user", "list", "--json").stdout)
    assert [u["login"] for u in listed] == ["ada", "mia", "zed"]
    ada = listed[0]
    assert D(ada["balance"]) == D("2.50") and D(ada["available"]) == D("2.50")
    assert ada["groups"] == ["lab", "staff"] and ada["restricted"] and ada["enabled"]
    assert not listed[2]["enabled"] and not listed[2]["restricted"]

    rows = list(csv.reader(io.StringIO(system.ctl("user", "list", "--csv").stdout)))
    assert rows[0][:4] == ["login", "balance", "held", "available"]
    assert [(r[0], r[-1]) for r in rows[1:]] == [("ada", "true"), ("mia", "true"), ("zed", "false")]
    staff = system.ctl("user", "list", "--group", "staff", "--limit", "1")
    assert staff.stdout.split()[0] == "ada" and len(staff.stdout.splitlines()) == 1
    assert "cut short" in staff.stderr

    system.ctl("user", "enable", "zed")
    again = system.ctl("print", pdf(system), "--user", "zed", "--printer", "lab-1", "--wait")
    assert "printed" in again.stdout
    assert system.user_json("zed")["enabled"] is True

    unknown = system.ctl("user", "disable", "nobody", check=False)
    assert unknown.returncode == 1 and "no user named 'nobody'" in unknown.stderr
    assert "ledger OK" in system.ctl("ledger", "verify").stdout


async def test_an_administrator_cancels_a_job_held_for_confirmation(system):
    system.ctl("printer", "add", "lab-1", "--price-per-page", "0.10")
    system.ctl("user", "add", "bob", "--balance", "5.00")
    system.ctl("user", "set", "bob", "--selection", "confirm")
    async with EventRecorder(system.amqp_url) as events:
        out = system.ctl("print", pdf(system, 3), "--user", "bob", "--printer", "lab-1")
        job_id = out.stdout.split()[0]
        [asked] = await events.wait_for("job.input_required")
        assert asked.correlation_id == job_id

        out = system.ctl("job", "cancel", job_id, "--reason", "wrong printer")
        assert out.stdout.strip() == (
            f"{job_id}: cancelled (cancelled by an administrator: wrong printer)"
        )
        [cancelled] = await events.wait_for("job.cancelled")
        assert cancelled.correlation_id == job_id

        # The user's desktop is told, with the reason; the popup closes.
        notices = await system.desktop_messages(
            "bob", until=lambda m: isinstance(m, PromptClosed), timeout=30
        )
        closed = notices[-1]
        assert isinstance(closed, PromptClosed) and str(closed.job_id) == job_id
        assert (closed.outcome, closed.reason) == (
            "cancelled",
            "cancelled by an administrator: wrong printer",
        )

        # The ledger closed its question: a late "print" from the user charges nothing.
        # It does so when it takes the `job.cancelled` (as notification does, in its own
        # time): waited for, or the answer below can reach a question still open.
        async def question_closed() -> bool:
            sql = "SELECT state FROM ledger.pending_inputs WHERE job_id = $1"
            rows = await query(system.database_url, sql, uuid.UUID(job_id))
            return [r["state"] for r in rows] == ["cancelled"]

        assert await eventually(question_closed)
        # As the notification service forwards a desktop's answer (the ledger's only sender).
        async with rpc.connect(system.ids.services["notification"]) as client:
            try:
                await client.request(
                    "ledger.job.answer",
                    AnswerJob(job_id=uuid.UUID(job_id), user="bob", action="print"),
                )
                raise AssertionError("an answer for a cancelled job was accepted")
            except rpc.RequestFailed as exc:
                late = str(exc)
        assert "was cancelled and will not print" in late  # closed with the job
        assert events.of_type("job.authorized") == [] and events.of_type("job.charged") == []

    [job] = [j for j in json.loads(system.ctl("jobs", "--json").stdout) if j["job_id"] == job_id]
    assert job["state"] == "cancelled"
    bob = system.user_json("bob")
    assert (D(bob["balance"]), D(bob["held"]), bob["holds"]) == (D("5.00"), D("0.00"), [])
    statement = system.ctl("statement", "bob", "--csv").stdout.splitlines()
    assert [line.split(",")[2] for line in statement[1:]] == ["top-up"]  # no charge

    # A job that printed is refused, with the reason; nothing changes.
    system.ctl("user", "set", "bob", "--selection", "auto")
    out = system.ctl("print", pdf(system, 1), "--user", "bob", "--printer", "lab-1", "--wait")
    printed = out.stdout.split()[0]
    refused = system.ctl("job", "cancel", printed, check=False)
    assert refused.returncode == 1 and "the job is already printed" in refused.stderr
    unknown = system.ctl("job", "cancel", str(uuid.uuid4()), check=False)
    assert unknown.returncode == 1 and "no job" in unknown.stderr
    assert D(system.user_json("bob")["balance"]) == D("4.90")
    assert "ledger OK" in system.ctl("ledger", "verify").stdout
