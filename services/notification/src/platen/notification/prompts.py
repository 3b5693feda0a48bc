"""The prompt flow: ask the user's desktop, check the answer, pass it to the ledger, and
tell the desktop what came of it.

job.input_required -> desktop `job_prompt` (TTL = time left to the deadline)
desktop reply `user.<login>.answer` -> checked -> command `ledger.job.answer`, whose reply
    comes back on `notification.answers` -> desktop `answer_result`
the ledger's reply "authorized", or job.cancelled / job.denied of a prompted job -> desktop
    `prompt_closed`

A prompted job is authorised only by an answer, which only this service passes to the
ledger (`AnswerJob` accepts no other sender): so its reply says when the popup closes for
an authorisation, and notification does not take `job.authorized`, which every job has
and most without a prompt (a delivery a job saved). A cancellation or denial can come
from elsewhere (the job's deadline, pricing, the ledger at pricing), so those events are
still taken.
"""

from __future__ import annotations

import functools
import time
from datetime import UTC, datetime

import structlog

from platen.events.accounts import AnswerJob, AnswerOutcome, JobInputRequired
from platen.events.desktop import AnswerResult, JobAnswer, JobPrompt, PromptAccount, PromptClosed
from platen.events.jobs import JobCancelled, JobDenied
from platen.events.routing import COMMANDS, login_of_key
from platen.events.system import ErrorReply
from platen.messaging.handling import HandlerContext
from platen.messaging.settings import setting
from platen.messaging.topology import NOTIFICATION_ANSWERS
from platen.notification.domain import (
    Answer,
    AnswerRates,
    Prompt,
    Sender,
    Take,
    prompt_problem,
    sender_problem,
)
from platen.notification.sending import send
from platen.notification.subscriptions import subscribe

log = structlog.get_logger(__name__)


# Every desktop signs in as its own broker user, so a reply must carry the AMQP `user_id`,
# which RabbitMQ has checked against that user. "0" accepts replies without one: only for
# a broker without per-user identities (a development machine signed in as one user).
require_user_id = setting(
    "PLATEN_REQUIRE_REPLY_USER_ID", lambda value: value not in ("0", "false", "no"), "1"
)


# How fast one user's desktops may answer: PLATEN_ANSWER_BURST answers at once (a user
# answering every waiting job together), then PLATEN_ANSWER_RATE a second; the excess is
# dropped before any work is done for it. Counted per notification process: made at the
# first answer (or at start), and kept.
@functools.cache
def answer_rates() -> AnswerRates:
    return AnswerRates(rate=_answer_rate(), burst=_answer_burst())


_answer_rate = setting("PLATEN_ANSWER_RATE", float, "2")
_answer_burst = setting("PLATEN_ANSWER_BURST", int, "30")


CLOCK = time.monotonic
TOO_MANY = "too many answers at once: some were dropped; wait a few seconds and answer again"


@subscribe.event(JobInputRequired)
async def on_input_required(ctx: HandlerContext, event: JobInputRequired) -> None:
    prompt = Prompt(
        event.job_id, event.user, event.document_name, event.expires_at, marks=dict(ctx.marks)
    )
    if not await ctx.store.add_prompt(prompt):
        return  # asked already
    ttl = prompt.ttl_ms(datetime.now(UTC))
    if ttl is None:
        ctx.log.info("prompt not sent: its deadline has passed", user=event.user)
        return
    message = JobPrompt(
        job_id=event.job_id,
        kind=event.kind,
        document_name=event.document_name,
        printer=event.printer,
        sides=event.sides,
        color_sides=event.color_sides,
        grayscale_sides=event.grayscale_sides,
        copies=event.copies,
        duplex=event.duplex,
        cost=event.cost,
        # The same fields, field for field (a test compares the two models).
        accounts=[PromptAccount(**a.model_dump()) for a in event.accounts],
        allow_pin=event.allow_pin,
        expires_at=event.expires_at,
        messages=event.messages,
    )
    await send(ctx, event.user, message, event.job_id, expiration_ms=ttl)


@subscribe.desktop_reply(JobAnswer)
async def on_answer(ctx: HandlerContext, reply: JobAnswer) -> None:
    """A user's answer from their desktop. Checked here first (who sent it, for which open
    prompt), then again by the ledger, which alone decides."""
    problem = sender_problem(
        Sender(ctx.routing_key, ctx.user_id), reply.user, require_user_id=require_user_id()
    )
    if problem is not None:
        # Not told to `reply.user`: they did not send it. The log is the trace.
        ctx.log.warning("reply refused", reason=problem, routing_key=ctx.routing_key)
        return
    log = ctx.log.bind(job_id=str(reply.job_id), user=reply.user)
    if answer_rates().tell(reply.user):
        # The first answer over the limit (`admit_answer` let it through for this): told,
        # once per flood, not once per answer: telling is work too.
        log.warning("answer dropped", outcome="dropped", reason="too many answers")
        if await ctx.store.desktop_identity(reply.user):
            result = AnswerResult(job_id=reply.job_id, outcome="refused", reason=TOO_MANY)
            await send(ctx, reply.user, result, reply.job_id)
        return
    prompt = await ctx.store.prompt(reply.job_id)
    if prompt is not None:
        ctx.mark(**prompt.marks)
    if problem := prompt_problem(prompt, reply.user, datetime.now(UTC)):
        log.warning("answer refused", reason=problem)
        if await ctx.store.desktop_identity(reply.user) is None:
            return  # no such user: nobody to tell, and no queue to make for them
        await send(
            ctx,
            reply.user,
            AnswerResult(job_id=reply.job_id, outcome="refused", reason=problem),
            reply.job_id,
        )
        return
    command = AnswerJob(
        job_id=reply.job_id,
        user=reply.user,
        action=reply.action,
        account=reply.account,
        pin=reply.pin,
        comment=reply.comment,
    )
    command_id = await ctx.emit(
        command,
        exchange=COMMANDS,
        correlation_id=str(reply.job_id),
        reply_to=NOTIFICATION_ANSWERS,
    )
    await ctx.store.add_answer(Answer(command_id, reply.job_id, reply.user, reply.action))
    log.info("answer passed to the ledger", action=reply.action, by_pin=reply.pin is not None)


def admit_answer(routing_key: str | None, reply: JobAnswer) -> bool:
    """Run by the dispatcher before any work is done for a desktop's answer: whether it is
    within its user's rate. The login is the routing key's, which the broker lets a
    desktop publish under only as itself. An answer over the limit is dropped here, with
    no transaction and nothing stored; the first of a flood goes on to `on_answer`, which
    tells the desktop."""
    login = login_of_key(routing_key or "") or reply.user
    taken = answer_rates().take(login, CLOCK())
    if taken is Take.DROPPED:
        log.warning(
            "answer dropped",
            outcome="dropped",
            reason="too many answers",
            user=login,
            job_id=str(reply.job_id),
        )
        return False
    return True


on_answer.admit = admit_answer  # type: ignore[attr-defined]


async def _answer_for(ctx: HandlerContext):
    """The answer the ledger's reply is about (replies are correlated by command id)."""
    answer = await ctx.store.waiting_answer(ctx.envelope.correlation_id)
    if answer is None:
        ctx.log.info("reply for no waiting answer ignored", command_id=ctx.envelope.correlation_id)
        return None
    # The ledger's reply comes straight back (no marks travel that way): the job's marks
    # are the ones its prompt kept.
    prompt = await ctx.store.prompt(answer.job_id)
    if prompt is not None:
        ctx.mark(**prompt.marks)
    return answer


@subscribe.answer(AnswerOutcome)
async def on_outcome(ctx: HandlerContext, outcome: AnswerOutcome) -> None:
    answer = await _answer_for(ctx)
    if answer is None:
        return
    answer.settle(outcome.outcome)
    await ctx.store.save_answer(answer)
    result = AnswerResult(
        job_id=answer.job_id,
        outcome=outcome.outcome,
        reason=outcome.reason,
        account=outcome.account,
        amount=outcome.amount,
    )
    await send(ctx, answer.user, result, answer.job_id)
    if outcome.outcome == "authorized":
        await _close(ctx, answer.job_id, "authorized", f"charged to {outcome.account}")


@subscribe.answer(ErrorReply)
async def on_refusal(ctx: HandlerContext, error: ErrorReply) -> None:
    answer = await _answer_for(ctx)
    if answer is None:
        return
    answer.settle("refused")
    await ctx.store.save_answer(answer)
    ctx.log.warning("answer refused by the ledger", job_id=str(answer.job_id), reason=error.error)
    result = AnswerResult(job_id=answer.job_id, outcome="refused", reason=error.error)
    await send(ctx, answer.user, result, answer.job_id)


async def _close(ctx: HandlerContext, job_id, outcome: str, reason: str) -> None:
    prompt = await ctx.store.prompt(job_id)
    if prompt is None or not prompt.close():
        return  # not a prompted job, or closed already
    await ctx.store.save_prompt(prompt)
    closed = PromptClosed(
        job_id=job_id, document_name=prompt.document_name, outcome=outcome, reason=reason
    )
    await send(ctx, prompt.user, closed, job_id)


@subscribe.event(JobCancelled)
async def on_job_cancelled(ctx: HandlerContext, event: JobCancelled) -> None:
    await _close(ctx, event.job_id, "cancelled", event.reason)


async def close_denied(ctx: HandlerContext, event: JobDenied) -> None:
    await _close(ctx, event.job_id, "denied", event.reason)
