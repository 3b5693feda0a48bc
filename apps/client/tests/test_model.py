"""The presenter: what each server message makes the client do, and what answers it sends."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from platen.client.contract import (
    AnswerResult,
    BalanceNotice,
    JobPrompt,
    PromptAccount,
    PromptClosed,
)
from platen.client.model import (
    Choice,
    ClientModel,
    ClosePrompt,
    Notify,
    ShowBalance,
    ShowPrompt,
    UnknownPrompt,
)
from platen.client.recent import RecentAccounts

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
ACCOUNTS = [
    PromptAccount(account="personal:bob", path="bob", charge_rate=Decimal(1)),
    PromptAccount(account="shared:acme", path="clients/acme", charge_rate=Decimal(1)),
    PromptAccount(account="shared:globex", path="clients/globex", charge_rate=Decimal(1)),
]


def prompt(kind="confirm", minutes=5, accounts=ACCOUNTS, **kw) -> JobPrompt:
    return JobPrompt(
        job_id=kw.pop("job_id", uuid.uuid4()),
        kind=kind,
        document_name="a.pdf",
        printer="lab-1",
        sides=1,
        color_sides=0,
        grayscale_sides=1,
        copies=1,
        duplex=False,
        cost=Decimal("0.10"),
        accounts=accounts,
        allow_pin=False,
        expires_at=NOW + timedelta(minutes=minutes),
        **kw,
    )


def test_a_prompt_is_shown_once_even_when_delivered_again():
    m = ClientModel("bob")
    p = prompt()
    assert m.receive(p, NOW) == [ShowPrompt(p)]
    assert m.receive(p, NOW) == []


def test_a_prompt_past_its_deadline_is_not_shown():
    m = ClientModel("bob")
    assert m.receive(prompt(minutes=-1), NOW) == []
    assert m.waiting() == []


def test_prompts_expire_on_the_client_at_their_deadline():
    m = ClientModel("bob")
    p = prompt(minutes=1)
    m.receive(p, NOW)
    assert m.expire(NOW) == []
    [effect] = m.expire(NOW + timedelta(minutes=1))
    assert isinstance(effect, ClosePrompt) and effect.job_id == p.job_id
    with pytest.raises(UnknownPrompt):
        m.answer(p.job_id, Choice("print"))


def test_answer_sends_one_reply_and_the_prompt_waits_for_its_outcome():
    m = ClientModel("bob")
    p = prompt()
    m.receive(p, NOW)
    [reply] = m.answer(p.job_id, Choice("print", account="shared:acme"))
    # A confirmation names no account: the ledger charges the user's default.
    assert (reply.user, reply.action, reply.account) == ("bob", "print", None)
    assert p.job_id in m.answered and m.waiting() == []
    with pytest.raises(UnknownPrompt):
        m.answer(p.job_id, Choice("print"))  # answered once


def test_a_refused_answer_asks_again_and_an_accepted_one_closes():
    m = ClientModel("bob")
    p = prompt(kind="choose_account")
    m.receive(p, NOW)
    m.answer(p.job_id, Choice("print", account="shared:acme", pin="0000"))
    effects = m.receive(AnswerResult(job_id=p.job_id, outcome="refused", reason="wrong PIN"))
    assert effects[0] == ShowPrompt(p)
    assert isinstance(effects[1], Notify) and effects[1].text == "wrong PIN"
    [reply] = m.answer(p.job_id, Choice("print", account="shared:acme"))
    assert reply.account == "shared:acme" and reply.pin is None
    m.receive(AnswerResult(job_id=p.job_id, outcome="authorized", amount=Decimal("0.10")))
    assert p.job_id not in m.answered and m.waiting() == []


def test_closed_by_the_server_closes_the_open_prompt():
    m = ClientModel("bob")
    p = prompt()
    m.receive(p, NOW)
    closed = PromptClosed(
        job_id=p.job_id, document_name="a.pdf", outcome="cancelled", reason="deadline"
    )
    effects = m.receive(closed, NOW)
    assert isinstance(effects[0], ClosePrompt) and isinstance(effects[1], Notify)
    assert m.receive(p, NOW) == []  # a late redelivery stays closed


def test_apply_to_all_answers_the_jobs_the_choice_fits():
    m = ClientModel("bob")
    first = prompt(kind="choose_account")
    same = prompt(kind="choose_account")
    no_acme = prompt(kind="choose_account", accounts=ACCOUNTS[:1])
    confirm = prompt()
    for p in (first, same, no_acme, confirm):
        m.receive(p, NOW)
    replies = m.answer(first.job_id, Choice("print", account="shared:acme"), apply_to_all=True)
    answered = {r.job_id: r.account for r in replies}
    assert answered == {
        first.job_id: "shared:acme",
        same.job_id: "shared:acme",
        confirm.job_id: None,
    }
    assert [p.job_id for p in m.waiting()] == [no_acme.job_id]


def test_cancel_for_all_cancels_every_waiting_job():
    m = ClientModel("bob")
    ps = [prompt(), prompt(kind="choose_account")]
    for p in ps:
        m.receive(p, NOW)
    replies = m.answer(ps[0].job_id, Choice("cancel"), apply_to_all=True)
    assert sorted(r.job_id for r in replies) == sorted(p.job_id for p in ps)
    assert {r.action for r in replies} == {"cancel"}


def test_shared_accounts_recent_first_then_by_name_and_searchable(tmp_path):
    recent = RecentAccounts.load(tmp_path / "recent.json")
    m = ClientModel("bob", recent=recent)
    p = prompt(kind="choose_account")
    m.receive(p, NOW)
    assert [a.account for a in m.shared_accounts(p)] == ["shared:acme", "shared:globex"]
    m.answer(p.job_id, Choice("print", account="shared:globex"))
    assert [a.account for a in m.shared_accounts(p)] == ["shared:globex", "shared:acme"]
    assert [a.account for a in m.shared_accounts(p, "ACM")] == ["shared:acme"]
    # Kept on disk for the next start.
    assert RecentAccounts.load(tmp_path / "recent.json").accounts == ["shared:globex"]


def test_unreadable_recent_file_is_ignored(tmp_path):
    path = tmp_path / "recent.json"
    path.write_text("{not json")
    assert RecentAccounts.load(path).accounts == []


def test_balance_updates():
    m = ClientModel("bob")
    assert m.receive(BalanceNotice(balance=Decimal("3.00"), available=Decimal("2.50"))) == [
        ShowBalance("3.00", "2.50")
    ]


def test_print_for_all_never_vouches_for_a_job_someone_else_may_have_sent():
    m = ClientModel("bob")
    question = "Did you print 'a.pdf' from 10.0.0.9 at 12:00?"
    mine, other = prompt(), prompt()
    unproven = prompt(messages=[question])
    for p in (mine, other, unproven):
        m.receive(p, NOW)
    # "Print" for all: the other confirmation, not the job nobody proved is bob's.
    assert m.jobs_for(mine.job_id, Choice("print")) == [mine.job_id, other.job_id]
    replies = m.answer(mine.job_id, Choice("print"), apply_to_all=True)
    assert {r.job_id for r in replies} == {mine.job_id, other.job_id}
    assert unproven.job_id in m.prompts
    # Its own "yes" answers it alone; "cancel" for all may take it too.
    m.receive(again := prompt(messages=[question]), NOW)
    replies = m.answer(unproven.job_id, Choice("cancel"), apply_to_all=True)
    assert {r.job_id for r in replies} == {unproven.job_id, again.job_id}


def test_favourites_first_then_recent_then_by_name_and_search_by_code(tmp_path):
    from platen.client.recent import Favourites

    accounts = [
        *ACCOUNTS,
        PromptAccount(
            account="shared:initech", path="research/initech", charge_rate=Decimal(1), code="R-7"
        ),
    ]
    m = ClientModel(
        "bob",
        recent=RecentAccounts.load(tmp_path / "recent.json"),
        favourites=Favourites.load(tmp_path / "fav.json"),
    )
    p = prompt(kind="choose_account", accounts=accounts)
    m.recent.used("shared:globex")
    assert m.toggle_favourite("shared:initech") is True
    order = [a.account for a in m.shared_accounts(p)]
    assert order == ["shared:initech", "shared:globex", "shared:acme"]
    assert [a.account for a in m.shared_accounts(p, "r-7")] == ["shared:initech"]
    assert Favourites.load(tmp_path / "fav.json").accounts == ["shared:initech"]
    (tmp_path / "fav.json").write_text("{not json")
    assert Favourites.load(tmp_path / "fav.json").accounts == []  # unreadable: none


def test_recent_jobs_keep_one_entry_a_job_in_any_order_and_only_the_last_ten():
    from platen.client.contract import DeniedNotice, PrintedNotice

    m = ClientModel("bob")
    p = prompt()
    m.receive(p, NOW)
    printed = PrintedNotice(
        job_id=p.job_id,
        document_name=p.document_name,
        printer=p.printer,
        sides=1,
        copies=1,
        cost=Decimal("0.10"),
        balance=Decimal("4.90"),
    )
    closed = PromptClosed(
        job_id=p.job_id, document_name=p.document_name, outcome="cancelled", reason="late"
    )
    # "Printed" arrives before a stale "cancelled" for the same job: printed it stays.
    m.receive(printed, NOW)
    m.receive(closed, NOW)
    [job] = m.recent_jobs.values()
    assert (job.outcome, job.cost, job.printer) == ("printed", Decimal("0.10"), p.printer)
    # A cancelled prompt names the printer it was asked for; an authorised one waits.
    q, r = prompt(), prompt()
    m.receive(q, NOW)
    m.receive(r, NOW)
    m.receive(
        PromptClosed(job_id=r.job_id, document_name="r", outcome="authorized", reason="ok"), NOW
    )
    assert r.job_id not in m.recent_jobs
    m.receive(
        PromptClosed(job_id=q.job_id, document_name="q", outcome="cancelled", reason="x"), NOW
    )
    assert (m.recent_jobs[q.job_id].outcome, m.recent_jobs[q.job_id].printer) == (
        "cancelled",
        q.printer,
    )
    # The answer's result may come before the "closed": the printer is still known.
    c = prompt()
    m.receive(c, NOW)
    m.answer(c.job_id, Choice("cancel"))
    m.receive(AnswerResult(job_id=c.job_id, outcome="cancelled"), NOW)
    m.receive(
        PromptClosed(job_id=c.job_id, document_name="c", outcome="cancelled", reason="x"), NOW
    )
    assert (m.recent_jobs[c.job_id].outcome, m.recent_jobs[c.job_id].printer) == (
        "cancelled",
        c.printer,
    )
    for i in range(12):
        m.receive(
            DeniedNotice(job_id=uuid.uuid4(), document_name=f"d{i}", printer="p", reason="r"),
            NOW,
        )
    assert len(m.recent_jobs) == 10
    assert [j.document for j in m.recent_jobs.values()][-1] == "d11"
    assert p.job_id not in m.recent_jobs
