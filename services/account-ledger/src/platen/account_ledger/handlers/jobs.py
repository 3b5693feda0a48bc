"""Jobs: deciding who pays, asking the user when needed, holding, charging, releasing.

Orchestration only: the rules are in `domain.py` (read it for "when is a job charged?"),
the SQL in `store.py`.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from platen.account_ledger import domain
from platen.account_ledger.domain import Ask, ChargeTo, Deny, Hold, Job, NotFound, Question
from platen.account_ledger.handlers.common import SERVICE, balance_changed
from platen.account_ledger.handlers.directory import first_job
from platen.account_ledger.subscriptions import subscribe
from platen.events.accounts import (
    AccountOption,
    AnswerJob,
    AnswerOutcome,
    JobCharged,
    JobInputRequired,
    PinLocked,
)
from platen.events.jobs import (
    JobAuthorized,
    JobCancelled,
    JobDenied,
    JobFailed,
    JobPriced,
    JobPrinted,
    JobUnconfirmed,
)
from platen.events.system import ErrorReply
from platen.messaging.batching import locks_for_batch
from platen.messaging.handling import HandlerContext
from platen.messaging.settings import setting

input_deadline = setting(
    "PLATEN_INPUT_DEADLINE_SECONDS", lambda value: timedelta(seconds=int(value)), "600"
)


async def _deny(ctx: HandlerContext, job: Job | Question, user: str, reason: str) -> None:
    ctx.log.info("job denied", reason=reason)
    await ctx.emit(
        JobDenied(
            job_id=job.job_id,
            user=user,
            printer=job.printer,
            document_name=job.document_name,
            reason=reason,
            denied_by=SERVICE,
        ),
        correlation_id=str(job.job_id),
    )


async def _hold(
    ctx: HandlerContext,
    job: Job | Question,
    login: str,
    account_id: str,
    comment: str | None = None,
    *,
    by_pin: bool = False,
) -> Hold | Deny:
    """Reserve the job's cost on `account_id` and authorise the job, or why not."""
    # Locked before it is read: two jobs on one account are decided one after the other,
    # each seeing what the other held.
    await ctx.store.lock_accounts([account_id])
    account = await ctx.store.account(account_id)
    groups = await ctx.store.user_groups(login)
    hold = domain.hold_for(job, login, account, groups=groups, by_pin=by_pin, comment=comment)
    if isinstance(hold, Deny):
        return hold
    account.balance, account.held, account.low_balance_armed = await ctx.store.add_hold(hold)
    ctx.log.info(
        "job authorized", amount=str(hold.amount), account=account_id, rate=str(hold.charge_rate)
    )
    await ctx.emit(
        JobAuthorized(
            job_id=job.job_id,
            user=login,
            account=account_id,
            amount=hold.amount,
            comment=comment,
        ),
        correlation_id=str(job.job_id),
    )
    await balance_changed(ctx, account_id, account)
    return hold


def _job(event: JobPriced) -> Job:
    # Job's fields are named as the event's.
    return Job(**{f.name: getattr(event, f.name) for f in dataclasses.fields(Job)})


async def _lock_priced(store, events: list[JobPriced]) -> None:
    """A batch of prices: its jobs (and their marks read), its users (shared, as each job
    does, and read), then every account they may be held on, each locked once and in the
    order a job alone takes them (a job, its user, then accounts by id; deleting a user
    also takes the user's row before the account's)."""
    await store.lock_jobs(e.job_id for e in events)
    await store.read_marks(e.job_id for e in events)
    logins = {e.user for e in events}
    await store.share_users(logins)  # and read them, with their groups
    await store.lock_accounts(await store.payers(logins))


async def _lock_settled(store, events: list[JobPrinted | JobUnconfirmed]) -> None:
    """A batch of postings: its jobs, then the accounts their holds are on and the
    revenue accounts they credit, each locked once and in the ledger's order."""
    job_ids = [e.job_id for e in events]
    await store.lock_jobs(job_ids)
    revenue = {domain.revenue_account(j) for j in job_ids}
    # The holds, locked and read once for the whole batch, in the order a job alone takes
    # them (its hold, then the accounts).
    await store.lock_accounts(await store.lock_holds(job_ids) | revenue)


@subscribe.event(JobPriced)
async def on_job_priced(ctx: HandlerContext, event: JobPriced) -> None:
    job = _job(event)
    await ctx.store.lock_job(event.job_id)
    # Both read now, in one statement: nothing else marks the job while its lock is held.
    closed, seen = await ctx.store.job_marks(event.job_id)
    if closed:
        ctx.log.info("price for a job that was already cancelled ignored")
        return
    await ctx.store.share_user(event.user)  # not deleted while this job is held
    user = await ctx.store.user(event.user)
    if user is None and ctx.prepared is not None:
        # A user the directory knows, printing for the first time: made by the first
        # new-user rule that matches them, and the job goes on; or denied with the reason.
        made = await first_job(ctx, event.user, ctx.prepared)
        if isinstance(made, str):
            await _deny(ctx, job, event.user, made)
            return
        user = made
    step = domain.route(job, user)
    if isinstance(step, Deny):
        await _deny(ctx, job, event.user, step.reason)
        return
    if seen:
        return  # seen already (the same job priced twice)
    if isinstance(step, ChargeTo):
        held = await _hold(ctx, job, event.user, step.account_id)
        if isinstance(held, Deny):
            await _deny(ctx, job, event.user, held.reason)
        return
    await _ask(ctx, job, step)


async def _ask(ctx: HandlerContext, job: Job, step: Ask) -> None:
    login = job.user
    if step.kind == "confirm":
        choices = [step.default]
    else:
        personal = domain.personal_account(login)
        choices = [personal] + [a for a in await _shared_choices(ctx, login) if a != personal]
    options = []
    for account_id in choices:
        acc = await ctx.store.account(account_id)
        options.append(
            AccountOption(
                account=account_id,
                path=acc.name,
                charge_rate=acc.effective_charge_rate,
                code=acc.code,
                available=acc.available_shown_to_users,
            )
        )
    question = job.question(step.kind, datetime.now(UTC) + input_deadline())
    await ctx.store.add_question(question)
    ctx.log.info("job waits for its user", kind=step.kind, choices=len(options))
    await ctx.emit(
        JobInputRequired(
            job_id=question.job_id,
            user=question.user,
            printer=question.printer,
            document_name=question.document_name,
            sides=question.sides,
            copies=question.copies,
            cost=question.cost,
            kind=step.kind,
            accounts=options,
            allow_pin=step.kind == "choose_account" and await ctx.store.any_pin_accounts(),
            expires_at=question.expires_at,
            color_sides=job.color_sides,
            grayscale_sides=job.grayscale_sides,
            duplex=job.duplex,
            messages=job.messages,
        ),
        correlation_id=str(job.job_id),
    )


async def _shared_choices(ctx: HandlerContext, login: str) -> list[str]:
    """The shared accounts `login` may choose from a list, by path."""
    groups = await ctx.store.user_groups(login)
    choices = []
    for account_id in await ctx.store.shared_account_ids():
        acc = await ctx.store.account(account_id)
        if acc.may_be_charged_by(login, groups) and acc.usable:
            choices.append(account_id)
    return choices


def _refused(ctx: HandlerContext, cmd: AnswerJob, reason: str) -> ErrorReply:
    ctx.log.warning("answer refused", user=cmd.user, reason=reason)
    return ErrorReply(error=reason)


@subscribe.command(AnswerJob, senders=("notification",))
async def on_answer(ctx: HandlerContext, cmd: AnswerJob) -> AnswerOutcome | ErrorReply:
    await ctx.store.lock_job(cmd.job_id)
    question = await ctx.store.question(cmd.job_id, lock=True)
    if question is None:
        return _refused(ctx, cmd, "this job is not waiting for an answer")
    user = await ctx.store.user(cmd.user)
    if refusal := question.refusal(cmd.user, enabled=user is not None and user.enabled):
        return _refused(ctx, cmd, refusal)
    if question.expired(datetime.now(UTC)):
        await _cancel(ctx, question, "no answer before the job's deadline")
        return _refused(ctx, cmd, "too late: the job's deadline has passed and it was cancelled")
    if cmd.action == "cancel":
        await _cancel(ctx, question, f"cancelled by {cmd.user}")
        return AnswerOutcome(job_id=cmd.job_id, outcome="cancelled", reason="cancelled")

    account_id, problem = await _chosen_account(ctx, question, cmd, user)
    if problem:
        return _refused(ctx, cmd, problem)
    question.answer()
    await ctx.store.save_question(question)
    by_pin = question.by_pin(cmd.account, cmd.pin)
    held = await _hold(ctx, question, cmd.user, account_id, cmd.comment, by_pin=by_pin)
    if isinstance(held, Deny):
        await _deny(ctx, question, cmd.user, held.reason)
        return AnswerOutcome(
            job_id=cmd.job_id, outcome="denied", account=account_id, reason=held.reason
        )
    return AnswerOutcome(
        job_id=cmd.job_id, outcome="authorized", account=account_id, amount=held.amount
    )


async def _chosen_account(
    ctx: HandlerContext, question: Question, cmd: AnswerJob, user: domain.User
) -> tuple[str, str | None]:
    """The account the answer picks, or a reason to refuse the answer."""
    if question.kind == "confirm" or cmd.account is None:
        return user.pays_with, None
    try:
        account_id = await ctx.store.resolve(cmd.account)
    except NotFound:
        return "", "no such account"
    if cmd.pin is not None:
        return account_id, await _check_pin(ctx, cmd.user, account_id, cmd.pin)
    account = await ctx.store.account(account_id)
    if not account.may_be_charged_by(cmd.user, user.groups):
        return "", f"you may not charge {account_id}"
    return account_id, None


async def _check_pin(ctx: HandlerContext, login: str, account_id: str, pin: str) -> str | None:
    # One PIN check per user, and per account, at a time: answers sent at once, by one
    # user for several waiting jobs or by several users guessing one account, must not
    # each see the failure count below the limit. (Always user first, then account.)
    await ctx.store.lock_user(login)
    await ctx.store.lock_pin_entry(account_id)
    now = datetime.now(UTC)
    since = now - domain.PIN_WINDOW
    by_user = await ctx.store.pin_failures(login, since=since)
    on_account = await ctx.store.account_pin_failures(account_id, since=since)
    if lock := domain.pin_lock(by_user, on_account, now):
        return lock.reason(now)
    account = await ctx.store.account(account_id)
    if not account.opened_by(pin):
        # Recorded even though the answer is refused: the refusal commits, so the count
        # of wrong guesses survives the reply.
        await ctx.store.add_pin_failure(login, account_id, now)
        if lock := domain.pin_lock([*by_user, now], [*on_account, now], now):
            failures = len(by_user) + 1 if lock.scope == "user" else len(on_account) + 1
            # Someone may be guessing: this one goes to administrators, not only the log.
            ctx.log.warning(
                "PIN entry locked", account=account_id, scope=lock.scope, until=str(lock.until)
            )
            await ctx.emit(
                PinLocked(
                    account=account_id,
                    user=login,
                    scope=lock.scope,
                    failures=failures,
                    until=lock.until,
                ),
                correlation_id=account_id,
            )
        return "wrong PIN"
    return None


async def _cancel(ctx: HandlerContext, question: Question, reason: str) -> None:
    question.cancel()
    await ctx.store.save_question(question)
    ctx.log.info("job cancelled", reason=reason)
    await ctx.emit(
        JobCancelled(
            job_id=question.job_id,
            user=question.user,
            printer=question.printer,
            document_name=question.document_name,
            reason=reason,
        ),
        correlation_id=str(question.job_id),
    )


@subscribe.event(JobPrinted, JobUnconfirmed)
async def on_job_printed(ctx: HandlerContext, event: JobPrinted | JobUnconfirmed) -> None:
    """Post the job's hold: it printed, or its fate is unknown after the release timeout
    (`job.unconfirmed`: the printer may have printed it). Once per job (`domain.settle`)."""
    await ctx.store.lock_job(event.job_id)
    hold = await ctx.store.hold(event.job_id, lock=True)
    settled = domain.settle(hold, f"{event.document_name} on {event.printer}")
    if settled is None:
        ctx.log.info(
            "no pending hold for this job; nothing more charged",
            hold_state=hold and hold.state.value,
            by=event.message_type,
        )
        return
    hold = settled.hold
    await ctx.store.settle(settled.posting, hold)
    account = await ctx.store.account(hold.account_id)
    new_balance = account.balance
    ctx.log.info("job charged", amount=str(hold.amount), balance=str(new_balance))
    await ctx.emit(
        JobCharged(
            job_id=event.job_id,
            user=hold.user,
            account=hold.account_id,
            printer=hold.printer,
            document_name=hold.document_name,
            sides=hold.sides,
            copies=hold.copies,
            amount=hold.amount,
            balance=new_balance,
        ),
        correlation_id=str(event.job_id),
    )
    await balance_changed(ctx, hold.account_id, account)


locks_for_batch(on_job_priced, _lock_priced)
locks_for_batch(on_job_printed, _lock_settled)


async def _lock_released(store, events: list[JobFailed | JobCancelled]) -> None:
    """A batch of failures and cancellations: their jobs, their holds, then the accounts
    the holds are on, in the ledger's order."""
    job_ids = [e.job_id for e in events]
    await store.lock_jobs(job_ids)
    await store.lock_accounts(await store.lock_holds(job_ids))


@subscribe.event(JobFailed, JobCancelled)
async def on_job_not_printed(ctx: HandlerContext, event: JobFailed | JobCancelled) -> None:
    """A failed or cancelled job is never charged: release what was held for it
    (`domain.release`)."""
    await ctx.store.lock_job(event.job_id)
    await ctx.store.close_job(event.job_id)
    question = await ctx.store.question(event.job_id, lock=True)
    hold = await ctx.store.hold(event.job_id, lock=True)
    released = domain.release(hold, question)
    if released.question:
        await ctx.store.save_question(question)
    if released.hold:
        # The account's row first, as every change of what it holds takes it (after the
        # job and its hold, as a posting does): a batch that has it locked may then keep
        # its funds held in memory (store.Store).
        await ctx.store.lock_accounts([hold.account_id])
        await ctx.store.save_hold(hold)
        ctx.log.info("hold released", reason=event.reason)
        await balance_changed(ctx, hold.account_id)


locks_for_batch(on_job_not_printed, _lock_released)
