"""The prompt flow, run as the dispatcher runs it, with a fake store and no broker."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from platen.events.accounts import AccountOption, AnswerJob, AnswerOutcome, JobInputRequired
from platen.events.base import Envelope
from platen.events.desktop import AnswerResult, JobAnswer, JobPrompt, PromptClosed
from platen.events.jobs import JobAuthorized, JobCancelled
from platen.events.routing import COMMANDS, DESKTOP
from platen.events.system import ErrorReply
from platen.messaging.fakes import FakeContext
from platen.messaging.topology import NOTIFICATION_ANSWERS
from platen.notification import prompts


def input_required(user="bob", expires_in=timedelta(minutes=10), **kw) -> JobInputRequired:
    return JobInputRequired(
        job_id=uuid.uuid4(),
        user=user,
        printer="lab-1",
        document_name="thesis.pdf",
        sides=3,
        copies=1,
        cost=Decimal("0.30"),
        kind="choose_account",
        allow_pin=False,
        expires_at=datetime.now(UTC) + expires_in,
        **{
            "accounts": [AccountOption(account="personal:bob", path="personal", charge_rate="1")],
            **kw,
        },
    )


def answer(job_id, user="bob", action="print") -> JobAnswer:
    return JobAnswer(job_id=job_id, user=user, action=action, account="personal:bob")


def from_desktop(ctx: FakeContext, login: str) -> FakeContext:
    """The same store, as a delivery `login`'s desktop sent under its own identity."""
    return FakeContext(store=ctx.store, routing_key=f"user.{login}.answer", user_id=login)


async def asked(ctx, **kw) -> JobInputRequired:
    event = input_required(**kw)
    await ctx.store.add_desktop_identity(event.user)
    await prompts.on_input_required(ctx, event)
    return event


async def test_a_prompt_goes_to_the_users_desktop_and_vanishes_at_its_deadline(ctx, store):
    event = await asked(ctx)
    [sent] = ctx.emitted
    assert isinstance(sent.message, JobPrompt)
    assert sent.message.job_id == event.job_id
    assert sent.message.cost == Decimal("0.30")
    assert sent.exchange == DESKTOP
    assert sent.routing_key == "user.bob.job_prompt"
    assert 595_000 < sent.expiration_ms <= 600_000
    assert store.prompts[event.job_id].state == "open"
    assert store.deliveries == [("bob", "job_prompt", event.job_id)]


async def test_the_prompt_carries_each_accounts_code_and_visible_balance(ctx):
    shared = [
        AccountOption(account="personal:bob", path="bob", charge_rate="1", available="2.50"),
        AccountOption(account="shared:lab", path="lab", charge_rate="1", code="L-7"),
        AccountOption(
            account="shared:art", path="art", charge_rate="1", code="A1", available="9.00"
        ),
    ]
    event = input_required(accounts=shared)
    await ctx.store.add_desktop_identity("bob")
    await prompts.on_input_required(ctx, event)
    [prompt] = ctx.messages(JobPrompt)
    assert [(a.account, a.code, a.available) for a in prompt.accounts] == [
        ("personal:bob", None, Decimal("2.50")),
        ("shared:lab", "L-7", None),
        ("shared:art", "A1", Decimal("9.00")),
    ]


async def test_a_job_is_asked_once_however_often_the_event_comes(ctx):
    event = await asked(ctx)
    await prompts.on_input_required(ctx, event)
    assert len(ctx.messages(JobPrompt)) == 1


async def test_a_prompt_past_its_deadline_is_recorded_but_not_sent(ctx, store):
    event = await asked(ctx, expires_in=timedelta(milliseconds=500))
    assert ctx.emitted == []
    assert event.job_id in store.prompts


async def test_the_users_answer_goes_to_the_ledger_as_a_command(ctx, store):
    event = await asked(ctx)
    reply_ctx = from_desktop(ctx, "bob")
    await prompts.on_answer(reply_ctx, answer(event.job_id))
    [sent] = reply_ctx.emitted
    assert isinstance(sent.message, AnswerJob)
    assert sent.message.user == "bob" and sent.message.action == "print"
    assert sent.exchange == COMMANDS
    assert sent.reply_to == NOTIFICATION_ANSWERS
    [recorded] = store.answers.values()
    assert recorded.command_id == "fake-1" and recorded.outcome is None


async def test_someone_elses_answer_is_refused_and_told_to_them_only(ctx, store):
    event = await asked(ctx)
    await store.add_desktop_identity("eve")
    eve = from_desktop(ctx, "eve")
    await prompts.on_answer(eve, answer(event.job_id, user="eve"))
    [sent] = eve.emitted
    assert isinstance(sent.message, AnswerResult)
    assert sent.message.outcome == "refused"
    assert "someone else" in sent.message.reason
    assert sent.routing_key == "user.eve.answer_result"
    assert store.answers == {}


async def test_a_reply_under_another_users_identity_is_dropped(ctx, store):
    event = await asked(ctx)
    # Mallory's desktop claims to speak for bob: nobody is told, nothing is forwarded.
    forged = FakeContext(store=store, routing_key="user.bob.answer", user_id="mallory")
    await prompts.on_answer(forged, answer(event.job_id))
    assert forged.emitted == []
    assert store.answers == {}


async def test_an_answer_from_an_unknown_user_is_refused_silently(ctx, store):
    nobody = from_desktop(ctx, "ghost")
    await prompts.on_answer(nobody, answer(uuid.uuid4(), user="ghost"))
    assert nobody.emitted == []


async def test_an_answer_to_a_closed_prompt_is_refused(ctx, store):
    event = await asked(ctx)
    await prompts.on_job_cancelled(ctx, cancelled(event))
    bob = from_desktop(ctx, "bob")
    await prompts.on_answer(bob, answer(event.job_id))
    [result] = bob.messages(AnswerResult)
    assert "no longer waiting" in result.reason
    assert bob.messages(AnswerJob) == []


def ledger_reply(ctx, command_id: str) -> FakeContext:
    env = Envelope("ledger.job.answer.reply", 1, "account-ledger", correlation_id=command_id)
    return FakeContext(store=ctx.store, envelope=env)


async def test_the_ledgers_outcome_goes_back_to_the_desktop_once(ctx, store):
    event = await asked(ctx)
    await prompts.on_answer(from_desktop(ctx, "bob"), answer(event.job_id))
    outcome = AnswerOutcome(
        job_id=event.job_id, outcome="authorized", account="personal:bob", amount="0.30"
    )
    first = ledger_reply(ctx, "fake-1")
    await prompts.on_outcome(first, outcome)
    [result] = first.messages(AnswerResult)
    assert result.outcome == "authorized" and result.amount == Decimal("0.30")
    assert first.emitted[0].routing_key == "user.bob.answer_result"
    assert store.answers["fake-1"].outcome == "authorized"

    again = ledger_reply(ctx, "fake-1")
    await prompts.on_outcome(again, outcome)
    assert again.emitted == []


async def test_the_ledgers_refusal_is_told_to_the_desktop(ctx, store):
    event = await asked(ctx)
    await prompts.on_answer(from_desktop(ctx, "bob"), answer(event.job_id))
    reply = ledger_reply(ctx, "fake-1")
    await prompts.on_refusal(reply, ErrorReply(error="wrong PIN"))
    [result] = reply.messages(AnswerResult)
    assert result.outcome == "refused" and result.reason == "wrong PIN"
    assert store.answers["fake-1"].outcome == "refused"


async def test_a_reply_for_no_waiting_answer_is_ignored(ctx):
    reply = ledger_reply(ctx, "unknown")
    await prompts.on_refusal(reply, ErrorReply(error="x"))
    assert reply.emitted == []


def cancelled(event) -> JobCancelled:
    return JobCancelled(
        job_id=event.job_id,
        user=event.user,
        printer=event.printer,
        document_name=event.document_name,
        reason="nobody answered",
    )


async def test_the_popup_closes_once_when_the_job_moves_on(ctx, store):
    event = await asked(ctx)
    await prompts.on_answer(from_desktop(ctx, "bob"), answer(event.job_id))
    closing = ledger_reply(ctx, "fake-1")
    authorized = AnswerOutcome(
        job_id=event.job_id, outcome="authorized", account="personal:bob", amount="0.30"
    )
    await prompts.on_outcome(closing, authorized)
    [closed] = closing.messages(PromptClosed)
    assert closed.outcome == "authorized" and closed.reason == "charged to personal:bob"
    assert [e.routing_key for e in closing.emitted] == [
        "user.bob.answer_result",
        "user.bob.prompt_closed",
    ]
    assert store.prompts[event.job_id].state == "closed"

    later = FakeContext(store=store)
    await prompts.on_job_cancelled(later, cancelled(event))
    assert later.emitted == []


async def test_a_job_that_asked_nothing_closes_no_popup(ctx):
    await prompts.on_job_cancelled(ctx, cancelled(input_required()))
    assert ctx.emitted == []


@pytest.mark.parametrize("outcome", ["cancelled", "denied"])
async def test_a_cancelling_or_denied_answer_leaves_the_popup_to_its_event(ctx, store, outcome):
    # These come with their job.cancelled / job.denied, which close the popup (and may
    # come first); the reply closes it only for an authorisation.
    event = await asked(ctx)
    await prompts.on_answer(from_desktop(ctx, "bob"), answer(event.job_id))
    reply = ledger_reply(ctx, "fake-1")
    await prompts.on_outcome(reply, AnswerOutcome(job_id=event.job_id, outcome=outcome))
    assert reply.messages(AnswerResult)[0].outcome == outcome
    assert reply.messages(PromptClosed) == []
    assert store.prompts[event.job_id].state == "open"


def test_notification_takes_no_job_authorized():
    # Every job is authorised, few were prompted: the authorisation of a prompted job
    # comes back as the ledger's reply to its answer, so the event is not bound here.
    from platen.messaging.topology import consumer_queues

    [events] = [q for q in consumer_queues("notification") if q.name == "notification.events"]
    assert JobAuthorized.message_type not in events.routing_keys
    assert JobCancelled.message_type in events.routing_keys


async def test_the_answer_to_a_marked_job_carries_its_marks_to_the_ledger(ctx, store):
    # The job came from a trusted queue: its job.input_required carried the mark. The
    # desktop's answer carries none; the prompt kept it, and the answer is marked again.
    ctx.mark(identity="trusted")
    event = await asked(ctx)
    desk = from_desktop(ctx, "bob")
    await prompts.on_answer(desk, answer(event.job_id))
    [command] = [e for e in desk.emitted if isinstance(e.message, AnswerJob)]
    assert command.marks == {"identity": "trusted"}
    assert desk.marks == {"identity": "trusted"}

    # The ledger's reply comes back through the default exchange, with no marks.
    reply = ledger_reply(ctx, "fake-1")
    await prompts.on_outcome(reply, AnswerOutcome(job_id=event.job_id, outcome="authorized"))
    assert reply.marks == {"identity": "trusted"}


async def test_an_unmarked_job_stays_unmarked(ctx):
    event = await asked(ctx)
    desk = from_desktop(ctx, "bob")
    await prompts.on_answer(desk, answer(event.job_id))
    [command] = [e for e in desk.emitted if isinstance(e.message, AnswerJob)]
    assert command.marks == {} and desk.marks == {}


async def deliver(ctx: FakeContext, reply: JobAnswer) -> None:
    """As the dispatcher delivers an answer: its `admit` first, then (if let in) the handler."""
    if prompts.on_answer.admit(ctx.routing_key, reply):
        await prompts.on_answer(ctx, reply)


async def test_a_flood_of_answers_is_cut_to_the_rate_and_another_users_answer_passes(ctx, clock):
    events = [await asked(ctx, user="mal") for _ in range(3)]
    bob = await asked(ctx)
    ctx.emitted.clear()
    mal = from_desktop(ctx, "mal")
    for i in range(100):  # 100 answers within one second
        clock.now += 0.01
        await deliver(mal, answer(events[i % 3].job_id, user="mal"))
    passed = [e for e in mal.emitted if isinstance(e.message, AnswerJob)]
    told = [e.message for e in mal.emitted if isinstance(e.message, AnswerResult)]
    assert 30 <= len(passed) <= 32  # the burst, and two a second after it
    # Told once that answers were dropped, not once per answer dropped.
    assert [(t.outcome, t.reason) for t in told] == [("refused", prompts.TOO_MANY)]

    # Bob, answering at the same moment, is not limited by mal's flood.
    ctx.store.answers.clear()  # (each fake context numbers its command ids from 1)
    bob_desktop = from_desktop(ctx, "bob")
    await deliver(bob_desktop, answer(bob.job_id))
    [forwarded] = [e.message for e in bob_desktop.emitted if isinstance(e.message, AnswerJob)]
    assert forwarded.user == "bob"

    # Mal's bucket refills with time: one answer passes again a second later.
    clock.now += 1.0
    sent_before = len(mal.emitted)
    await deliver(mal, answer(events[0].job_id, user="mal"))
    assert [type(e.message) for e in mal.emitted[sent_before:]] == [AnswerJob]


def test_a_prompts_accounts_have_the_fields_of_the_ledgers_options():
    """The prompt copies each option field for field: a field added to one must be added
    to the other (with a new version of each message)."""
    from platen.events.desktop import PromptAccount

    assert set(PromptAccount.model_fields) == set(AccountOption.model_fields)
