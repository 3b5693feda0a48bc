"""The ledger's message handlers: users, authorisation, charging, releasing holds."""

from __future__ import annotations

from platen.account_ledger import rules, store
from platen.events.accounts import (
    AddUser,
    BalanceChanged,
    JobCharged,
    ShowUser,
    UserAdded,
    UserView,
)
from platen.events.jobs import (
    JobAuthorized,
    JobCancelled,
    JobDenied,
    JobFailed,
    JobPriced,
    JobPrinted,
)
from platen.events.system import ErrorReply
from platen.messaging.handling import HandlerContext

SERVICE = "account-ledger"


async def _view(ctx: HandlerContext, login: str) -> UserView | None:
    row = await store.user_with_account(ctx.conn, login)
    if row is None:
        return None
    on_hold = await store.held(ctx.conn, row["account"])
    return UserView(
        login=row["login"],
        restricted=row["restricted"],
        account=row["account"],
        balance=row["balance"],
        held=on_hold,
        available=row["balance"] - on_hold,
    )


async def _balance_changed(ctx: HandlerContext, account: str, owner: str) -> None:
    bal = await store.balance(ctx.conn, account)
    available = bal - await store.held(ctx.conn, account)
    await ctx.emit(
        BalanceChanged(account=account, owner=owner, balance=bal, available=available),
        correlation_id=account,
    )


async def on_add_user(ctx: HandlerContext, cmd: AddUser) -> UserView:
    created = await ctx.conn.fetchval(
        """INSERT INTO users (login, restricted) VALUES ($1, $2)
           ON CONFLICT DO NOTHING RETURNING true""",
        cmd.login,
        cmd.restricted,
    )
    if created:
        account = rules.personal_account(cmd.login)
        await ctx.conn.execute(
            "INSERT INTO accounts (id, kind, owner_login) VALUES ($1, 'personal', $2)",
            account,
            cmd.login,
        )
        if cmd.initial_balance > 0:
            await store.post(
                ctx.conn,
                op_key=f"user:{cmd.login}:initial-balance",
                kind="top-up",
                description="initial balance",
                entries={account: cmd.initial_balance, rules.FUNDING: -cmd.initial_balance},
            )
        ctx.log.info("user added", login=cmd.login, balance=str(cmd.initial_balance))
        await ctx.emit(UserAdded(login=cmd.login), correlation_id=account)
        await _balance_changed(ctx, account, cmd.login)
    view = await _view(ctx, cmd.login)
    assert view is not None
    return view


async def on_show_user(ctx: HandlerContext, query: ShowUser) -> UserView | ErrorReply:
    return await _view(ctx, query.login) or ErrorReply(error=f"no user named {query.login!r}")


async def on_job_priced(ctx: HandlerContext, event: JobPriced) -> None:
    job_id = str(event.job_id)
    user = await store.user_with_account(ctx.conn, event.user, lock=True)

    async def deny(reason: str) -> None:
        ctx.log.info("job denied", reason=reason)
        await ctx.emit(
            JobDenied(
                job_id=event.job_id,
                user=event.user,
                printer=event.printer,
                document_name=event.document_name,
                reason=reason,
                denied_by=SERVICE,
            ),
            correlation_id=job_id,
        )

    if user is None:
        await deny(f"user {event.user!r} has no account")
        return
    if await ctx.conn.fetchval("SELECT 1 FROM holds WHERE job_id = $1", event.job_id):
        return  # authorised already (the same job priced twice)
    decision = rules.authorize(
        balance=user["balance"],
        held=await store.held(ctx.conn, user["account"]),
        cost=event.cost,
        restricted=user["restricted"],
        overdraft_limit=user["overdraft_limit"],
    )
    if not decision.authorized:
        await deny(decision.reason or "denied")
        return
    await ctx.conn.execute(
        """INSERT INTO holds (job_id, account_id, user_login, amount, state, printer,
                              document_name, pages, copies)
           VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7, $8)""",
        event.job_id,
        user["account"],
        event.user,
        event.cost,
        event.printer,
        event.document_name,
        event.pages,
        event.copies,
    )
    ctx.log.info("job authorized", amount=str(event.cost), account=user["account"])
    await ctx.emit(
        JobAuthorized(
            job_id=event.job_id, user=event.user, account=user["account"], amount=event.cost
        ),
        correlation_id=job_id,
    )
    await _balance_changed(ctx, user["account"], event.user)


async def on_job_printed(ctx: HandlerContext, event: JobPrinted) -> None:
    hold = await ctx.conn.fetchrow("SELECT * FROM holds WHERE job_id = $1 FOR UPDATE", event.job_id)
    if hold is None or hold["state"] != "pending":
        ctx.log.warning(
            "printed job has no pending hold; nothing charged", hold_state=hold and hold["state"]
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
            entries={hold["account_id"]: -amount, rules.REVENUE: amount},
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
    await _balance_changed(ctx, hold["account_id"], hold["user_login"])


async def on_job_not_printed(ctx: HandlerContext, event: JobFailed | JobCancelled) -> None:
    """A failed or cancelled job is never charged: release what was held for it."""
    hold = await ctx.conn.fetchrow(
        """UPDATE holds SET state = 'voided', resolved_at = now()
           WHERE job_id = $1 AND state = 'pending' RETURNING account_id, user_login""",
        event.job_id,
    )
    if hold is not None:
        ctx.log.info("hold released", reason=event.reason)
        await _balance_changed(ctx, hold["account_id"], hold["user_login"])
