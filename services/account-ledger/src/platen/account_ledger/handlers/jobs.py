"""Jobs: deciding who pays, asking the user when needed, holding, charging, releasing."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

from platen.account_ledger import rules, store
from platen.account_ledger.handlers.common import SERVICE, balance_changed
from platen.events.accounts import (
    AccountOption,
    AnswerJob,
    AnswerOutcome,
    JobCharged,
    JobInputRequired,
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
from platen.messaging.handling import HandlerContext

INPUT_DEADLINE = timedelta(seconds=int(os.environ.get("PLATEN_INPUT_DEADLINE_SECONDS", "600")))


async def _deny(ctx: HandlerContext, job, user: str, reason: str) -> None:
    ctx.log.info("job denied", reason=reason)
    await ctx.emit(
        JobDenied(
            job_id=job["job_id"],
            user=user,
            printer=job["printer"],
            document_name=job["document_name"],
            reason=reason,
            denied_by=SERVICE,
        ),
        correlation_id=str(job["job_id"]),
    )


async def _hold(
    ctx: HandlerContext, job, user: str, account_id: str, comment=None, *, by_pin: bool = False
) -> str | None:
    """Reserve the job's cost on `account_id` and authorise it; the denial reason if not.

    Access is checked here, at every job, not only when a default account is set: a grant
    taken away must stop the next job. A PIN stands in for access (`by_pin`).
    """
    await store.lock_accounts(ctx.conn, [account_id])
    acc = await store.account(ctx.conn, account_id)
    if not await store.usable(ctx.conn, account_id):
        return f"account {acc['name']} is disabled"
    if not by_pin and not await store.may_use(ctx.conn, user, account_id):
        return f"you may no longer charge account {acc['name']}"
    rate = await store.effective_charge_rate(ctx.conn, account_id)
    amount = rules.charge_amount(job["cost"], rate)
    decision = rules.authorize(
        balance=acc["balance"],
        held=await store.held(ctx.conn, account_id),
        cost=amount,
        restricted=acc["restricted"],
        overdraft_limit=acc["overdraft_limit"],
    )
    if not decision.authorized:
        return decision.reason
    await ctx.conn.execute(
        """INSERT INTO holds (job_id, account_id, user_login, base_cost, charge_rate, amount,
                              state, printer, document_name, pages, copies, comment)
           VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $8, $9, $10, $11)""",
        job["job_id"],
        account_id,
        user,
        job["cost"],
        rate,
        amount,
        job["printer"],
        job["document_name"],
        job["pages"],
        job["copies"],
        comment,
    )
    ctx.log.info("job authorized", amount=str(amount), account=account_id, rate=str(rate))
    await ctx.emit(
        JobAuthorized(job_id=job["job_id"], user=user, account=account_id, amount=amount),
        correlation_id=str(job["job_id"]),
    )
    await balance_changed(ctx, account_id)
    return None


def _job(event: JobPriced) -> dict:
    return {
        "job_id": event.job_id,
        "printer": event.printer,
        "document_name": event.document_name,
        "pages": event.pages,
        "copies": event.copies,
        "cost": event.cost,
        "color_pages": event.color_pages,
        "grayscale_pages": event.grayscale_pages,
        "duplex": event.duplex,
        "messages": event.messages,
    }


async def on_job_priced(ctx: HandlerContext, event: JobPriced) -> None:
    job = _job(event)
    await store.lock_job(ctx.conn, event.job_id)
    if await ctx.conn.fetchval("SELECT 1 FROM closed_jobs WHERE job_id = $1", event.job_id):
        ctx.log.info("price for a job that was already cancelled ignored")
        return
    user = await store.user(ctx.conn, event.user)
    if user is None:
        await _deny(ctx, job, event.user, f"user {event.user!r} has no account")
        return
    if not user["enabled"]:
        await _deny(ctx, job, event.user, "your account is disabled: ask an administrator")
        return
    if await ctx.conn.fetchval(
        "SELECT 1 FROM holds WHERE job_id = $1 UNION ALL SELECT 1 FROM pending_inputs "
        "WHERE job_id = $1",
        event.job_id,
    ):
        return  # seen already (the same job priced twice)
    default = user["default_account"] or rules.personal_account(event.user)
    selection = user["account_selection"]
    if selection == "auto" and event.confirm:
        selection = "confirm"  # a printer policy wants this job confirmed
    if selection == "auto":
        if reason := await _hold(ctx, job, event.user, default):
            await _deny(ctx, job, event.user, reason)
        return
    await _ask(ctx, job, event.user, selection, default)


async def _ask(ctx: HandlerContext, job, login: str, selection: str, default: str) -> None:
    kind = "confirm" if selection == "confirm" else "choose_account"
    if kind == "confirm":
        choices = [default]
    else:
        personal = rules.personal_account(login)
        choices = [personal] + [
            a for a in await store.shared_accounts_for(ctx.conn, login) if a != personal
        ]
    options = []
    for account_id in choices:
        acc = await store.account(ctx.conn, account_id)
        rate = await store.effective_charge_rate(ctx.conn, account_id)
        options.append(AccountOption(account=account_id, path=acc["name"], charge_rate=rate))
    expires_at = datetime.now(UTC) + INPUT_DEADLINE
    await ctx.conn.execute(
        """INSERT INTO pending_inputs (job_id, user_login, kind, printer, document_name,
                                       pages, copies, cost, expires_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)""",
        job["job_id"],
        login,
        kind,
        job["printer"],
        job["document_name"],
        job["pages"],
        job["copies"],
        job["cost"],
        expires_at,
    )
    ctx.log.info("job waits for its user", kind=kind, choices=len(options))
    await ctx.emit(
        JobInputRequired(
            job_id=job["job_id"],
            user=login,
            printer=job["printer"],
            document_name=job["document_name"],
            pages=job["pages"],
            copies=job["copies"],
            cost=job["cost"],
            kind=kind,
            accounts=options,
            allow_pin=kind == "choose_account" and await store.any_pin_accounts(ctx.conn),
            expires_at=expires_at,
            color_pages=job["color_pages"],
            grayscale_pages=job["grayscale_pages"],
            duplex=job["duplex"],
            messages=job["messages"],
        ),
        correlation_id=str(job["job_id"]),
    )


def _refused(ctx: HandlerContext, cmd: AnswerJob, reason: str) -> ErrorReply:
    ctx.log.warning("answer refused", user=cmd.user, reason=reason)
    return ErrorReply(error=reason)


async def on_answer(ctx: HandlerContext, cmd: AnswerJob) -> AnswerOutcome | ErrorReply:
    await store.lock_job(ctx.conn, cmd.job_id)
    job = await ctx.conn.fetchrow(
        "SELECT * FROM pending_inputs WHERE job_id = $1 FOR UPDATE", cmd.job_id
    )
    if job is None:
        return _refused(ctx, cmd, "this job is not waiting for an answer")
    if job["user_login"] != cmd.user:
        return _refused(ctx, cmd, "this job belongs to someone else")
    if not (await store.user(ctx.conn, cmd.user))["enabled"]:
        return _refused(ctx, cmd, "your account is disabled")
    if job["state"] != "open":
        return _refused(ctx, cmd, "this job has been answered already")
    if datetime.now(UTC) >= job["expires_at"]:
        await _cancel(ctx, job, "no answer before the job's deadline")
        return _refused(ctx, cmd, "too late: the job's deadline has passed and it was cancelled")
    if cmd.action == "cancel":
        await _cancel(ctx, job, f"cancelled by {cmd.user}")
        return AnswerOutcome(job_id=cmd.job_id, outcome="cancelled", reason="cancelled")

    account_id, problem = await _chosen_account(ctx, job, cmd)
    if problem:
        return _refused(ctx, cmd, problem)
    await ctx.conn.execute(
        "UPDATE pending_inputs SET state = 'answered' WHERE job_id = $1", cmd.job_id
    )
    by_pin = cmd.pin is not None and job["kind"] == "choose_account" and cmd.account is not None
    if reason := await _hold(ctx, job, cmd.user, account_id, cmd.comment, by_pin=by_pin):
        await _deny(ctx, job, cmd.user, reason)
        return AnswerOutcome(job_id=cmd.job_id, outcome="denied", account=account_id, reason=reason)
    amount = await ctx.conn.fetchval("SELECT amount FROM holds WHERE job_id = $1", cmd.job_id)
    return AnswerOutcome(job_id=cmd.job_id, outcome="authorized", account=account_id, amount=amount)


async def _chosen_account(ctx: HandlerContext, job, cmd: AnswerJob) -> tuple[str, str | None]:
    """The account the answer picks, or a reason to refuse the answer."""
    user = await store.user(ctx.conn, cmd.user)
    default = user["default_account"] or rules.personal_account(cmd.user)
    if job["kind"] == "confirm" or cmd.account is None:
        return default, None
    try:
        account_id = await store.resolve(ctx.conn, cmd.account)
    except store.NotFound:
        return "", "no such account"
    if cmd.pin is not None:
        return account_id, await _check_pin(ctx, cmd.user, account_id, cmd.pin)
    if not await store.may_use(ctx.conn, cmd.user, account_id):
        return "", f"you may not charge {account_id}"
    return account_id, None


async def _check_pin(ctx: HandlerContext, login: str, account_id: str, pin: str) -> str | None:
    # One PIN check per user at a time: answers to several waiting jobs sent at once must
    # not each see the failure count below the limit.
    await ctx.conn.execute("SELECT 1 FROM users WHERE login = $1 FOR UPDATE", login)
    now = datetime.now(UTC)
    failures = [
        r["failed_at"]
        for r in await ctx.conn.fetch(
            "SELECT failed_at FROM pin_failures WHERE user_login = $1 AND failed_at > $2",
            login,
            now - rules.PIN_WINDOW,
        )
    ]
    locked = rules.pin_locked_until(failures, now)
    if locked is not None:
        minutes = max(1, int((locked - now).total_seconds() // 60) + 1)
        return f"too many wrong PINs: try again in {minutes} minutes"
    acc = await store.account(ctx.conn, account_id)
    if (
        acc["kind"] != "shared"
        or acc["pin_hash"] is None
        or not rules.pin_matches(pin, acc["pin_hash"])
    ):
        # Recorded even though the answer is refused: the refusal commits, so the count
        # of wrong guesses survives the reply.
        await ctx.conn.execute(
            "INSERT INTO pin_failures (user_login, account_id, failed_at) VALUES ($1, $2, $3)",
            login,
            account_id,
            now,
        )
        return "wrong PIN"
    return None


async def _cancel(ctx: HandlerContext, job, reason: str) -> None:
    await ctx.conn.execute(
        "UPDATE pending_inputs SET state = 'cancelled' WHERE job_id = $1", job["job_id"]
    )
    ctx.log.info("job cancelled", reason=reason)
    await ctx.emit(
        JobCancelled(
            job_id=job["job_id"],
            user=job["user_login"],
            printer=job["printer"],
            document_name=job["document_name"],
            reason=reason,
        ),
        correlation_id=str(job["job_id"]),
    )


async def on_job_printed(ctx: HandlerContext, event: JobPrinted | JobUnconfirmed) -> None:
    """Post the job's hold: it printed, or its fate is unknown after the release timeout
    (`job.unconfirmed`: the printer may have printed it). Once per job: a late "printed"
    for a job charged as unconfirmed finds the hold posted and charges nothing more."""
    await store.lock_job(ctx.conn, event.job_id)
    hold = await ctx.conn.fetchrow("SELECT * FROM holds WHERE job_id = $1 FOR UPDATE", event.job_id)
    if hold is None or hold["state"] != "pending":
        # Posted: charged already (a late "printed" after "unconfirmed"). Voided: the job
        # failed or was cancelled, which job-capture never follows with "printed" (its
        # states are final), so a "printed" here is not believed and charges nothing.
        ctx.log.info(
            "no pending hold for this job; nothing more charged",
            hold_state=hold and hold["state"],
            by=event.message_type,
        )
        return
    amount = hold["amount"]
    if amount > 0:
        await store.post(
            ctx.conn,
            op_key=f"job:{event.job_id}:charge",
            kind="charge",
            job_id=event.job_id,
            description=f"{event.document_name} on {event.printer}",
            entries={hold["account_id"]: -amount, rules.revenue_account(event.job_id): amount},
            created_by=hold["user_login"],
        )
    await ctx.conn.execute(
        "UPDATE holds SET state = 'posted', resolved_at = now() WHERE job_id = $1", event.job_id
    )
    new_balance = await store.balance(ctx.conn, hold["account_id"])
    ctx.log.info("job charged", amount=str(amount), balance=str(new_balance))
    await ctx.emit(
        JobCharged(
            job_id=event.job_id,
            user=hold["user_login"],
            account=hold["account_id"],
            printer=hold["printer"],
            document_name=hold["document_name"],
            pages=hold["pages"],
            copies=hold["copies"],
            amount=amount,
            balance=new_balance,
        ),
        correlation_id=str(event.job_id),
    )
    await balance_changed(ctx, hold["account_id"])


async def on_job_not_printed(ctx: HandlerContext, event: JobFailed | JobCancelled) -> None:
    """A failed or cancelled job is never charged: release what was held for it."""
    await store.lock_job(ctx.conn, event.job_id)
    await ctx.conn.execute(
        "INSERT INTO closed_jobs (job_id) VALUES ($1) ON CONFLICT DO NOTHING", event.job_id
    )
    await ctx.conn.execute(
        "UPDATE pending_inputs SET state = 'cancelled' WHERE job_id = $1 AND state = 'open'",
        event.job_id,
    )
    hold = await ctx.conn.fetchrow(
        """UPDATE holds SET state = 'voided', resolved_at = now()
           WHERE job_id = $1 AND state = 'pending' RETURNING account_id""",
        event.job_id,
    )
    if hold is not None:
        ctx.log.info("hold released", reason=event.reason)
        await balance_changed(ctx, hold["account_id"])
