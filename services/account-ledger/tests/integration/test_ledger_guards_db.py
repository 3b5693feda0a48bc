"""The ledger's rules that the database keeps, tried with direct SQL as the service's own
role (what a compromised account-ledger could send): each attempt is refused."""

from __future__ import annotations

import uuid
from decimal import Decimal as D

import asyncpg
import pytest

from platen.account_ledger.handlers import jobs, money, users
from platen.events.accounts import Adjust, SetUser, ShowUser
from platen.events.system import ErrorReply

from ..builders import cancelled as cancellation
from ..builders import priced, printed
from .test_ledger_db import add_user, balance


async def debit(conn, account: str, amount: str, key: str | None = None) -> None:
    """A balanced transaction taking `amount` from `account` to the funding account."""
    async with conn.transaction():
        tx = await conn.fetchval(
            "INSERT INTO transactions (op_key, kind, description) "
            "VALUES ($1, 'adjustment', 'by hand') RETURNING id",
            key or f"adjust:{uuid.uuid4()}",
        )
        await conn.execute(
            "INSERT INTO entries (transaction_id, account_id, amount, balance_after) "
            "VALUES ($1, $2, $3, 0), ($1, 'system:funding', $4, 0)",
            tx,
            account,
            -D(amount),
            D(amount),
        )


async def insert_hold(conn, account: str, amount: str, state: str = "pending") -> uuid.UUID:
    job_id = uuid.uuid4()
    await conn.execute(
        "INSERT INTO holds (job_id, account_id, user_login, base_cost, charge_rate, amount, "
        "state, printer, document_name, pages, copies) "
        "VALUES ($1, $2, 'x', $3, 1, $3, $4, 'lab-1', 'doc', 1, 1)",
        job_id,
        account,
        D(amount),
        state,
    )
    return job_id


# ----------------------------------------------------------------- who the service is


async def test_the_service_role_is_no_superuser_and_owns_nothing(ledger):
    async with ledger.pool.acquire() as conn:
        me = await conn.fetchrow(
            "SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls FROM pg_roles "
            "WHERE rolname = current_user"
        )
        assert not any(me.values())
        owned = await conn.fetchval(
            "SELECT count(*) FROM pg_class WHERE relnamespace = 'ledger'::regnamespace "
            "AND pg_has_role(current_user, relowner, 'USAGE')"
        )
        assert owned == 0


@pytest.mark.parametrize(
    "statement",
    [
        "ALTER TABLE entries DISABLE TRIGGER entries_apply",
        "ALTER TABLE entries DISABLE TRIGGER ALL",
        "ALTER TABLE accounts DISABLE TRIGGER accounts_balance_by_postings",
        "ALTER TABLE holds DISABLE TRIGGER holds_state_machine",
        "DROP TRIGGER entries_append_only ON entries",
        "SET session_replication_role = replica",
        "CREATE OR REPLACE FUNCTION guard_balance() RETURNS trigger LANGUAGE plpgsql "
        "AS $$ BEGIN RETURN NEW; END $$",
        "ALTER FUNCTION apply_entry() RESET search_path",
        "CREATE TRIGGER mine BEFORE INSERT ON entries FOR EACH ROW EXECUTE FUNCTION apply_entry()",
        "CREATE TEMP TABLE accounts (id text)",
        "ALTER TABLE accounts OWNER TO CURRENT_USER",
    ],
)
async def test_no_trigger_can_be_disabled_or_bypassed_by_the_service(ledger, statement):
    async with ledger.pool.acquire() as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(statement)


async def test_every_ledger_function_has_a_pinned_search_path(ledger):
    async with ledger.as_superuser() as conn:
        rows = await conn.fetch(
            "SELECT proname, proconfig FROM pg_proc WHERE pronamespace = 'ledger'::regnamespace"
        )
        triggers = await conn.fetchval(
            "SELECT count(*) FROM pg_proc WHERE pronamespace = 'ledger'::regnamespace "
            "AND prorettype = 'trigger'::regtype"
        )
    assert triggers >= 7
    unpinned = [
        r["proname"]
        for r in rows
        if "search_path=pg_catalog, ledger, pg_temp" not in (r["proconfig"] or [])
    ]
    assert unpinned == []


# ----------------------------------------------------------------- balances


async def test_a_balance_changes_only_by_a_posting(ledger):
    await add_user(ledger, "alice", "5.00")
    async with ledger.pool.acquire() as conn:
        with pytest.raises(asyncpg.CheckViolationError, match="only by posting"):
            await conn.execute("UPDATE accounts SET balance = 1000 WHERE id = 'personal:alice'")
        with pytest.raises(asyncpg.CheckViolationError, match="must start at 0"):
            await conn.execute(
                "INSERT INTO accounts (id, kind, name, balance) "
                "VALUES ('shared:rich', 'shared', 'rich', 1000)"
            )
        # Other columns of the row stay the service's to change.
        await conn.execute(
            "UPDATE accounts SET low_balance_armed = false WHERE id = 'personal:alice'"
        )
    assert await balance(ledger, "alice") == D("5.00")


# ----------------------------------------------------------------- a restricted account's floor


async def test_a_restricted_account_never_goes_below_its_floor(ledger):
    await add_user(ledger, "alice", "1.00")
    async with ledger.pool.acquire() as conn:
        with pytest.raises(asyncpg.CheckViolationError, match="below its floor of 0"):
            await debit(conn, "personal:alice", "1.01")
        await debit(conn, "personal:alice", "1.00")  # exactly to the floor
        with pytest.raises(asyncpg.CheckViolationError, match="below its floor"):
            await insert_hold(conn, "personal:alice", "0.01")
    assert await balance(ledger, "alice") == D("0.00")


async def test_the_floor_is_minus_the_overdraft_and_counts_pending_holds(ledger):
    await add_user(ledger, "bob", "1.00", overdraft_limit=D("1.00"))
    async with ledger.pool.acquire() as conn:
        await insert_hold(conn, "personal:bob", "0.80")
        with pytest.raises(asyncpg.CheckViolationError, match=r"below its floor of -1\.00"):
            await debit(conn, "personal:bob", "1.21")
        await debit(conn, "personal:bob", "1.20")  # 1.00 - 1.20 - 0.80 held = -1.00
        with pytest.raises(asyncpg.CheckViolationError, match="cannot hold"):
            await insert_hold(conn, "personal:bob", "0.01")
        # The owner of a hold can void it; then its funds are free again.
        await conn.execute("UPDATE holds SET state = 'voided' WHERE account_id = 'personal:bob'")
        await debit(conn, "personal:bob", "0.80")
    assert await balance(ledger, "bob") == D("-1.00")


async def test_an_unrestricted_account_has_no_floor(ledger):
    await add_user(ledger, "carol", "0", restricted=False)
    async with ledger.pool.acquire() as conn:
        await debit(conn, "personal:carol", "50.00")
    assert await balance(ledger, "carol") == D("-50.00")


async def test_a_printed_job_settles_its_hold_even_at_the_floor(ledger):
    await add_user(ledger, "dan", "0.30")
    job = priced("dan", "0.30")
    await ledger.run(jobs.on_job_priced, job)
    await ledger.run(jobs.on_job_printed, printed(job))
    view = await ledger.run(users.on_show_user, ShowUser(login="dan"))
    assert (view.balance, view.held) == (D("0.00"), D("0.00"))


async def test_an_adjustment_below_the_floor_is_refused_with_a_reason(ledger):
    await add_user(ledger, "erin", "1.00")
    reply = await ledger.run(
        money.on_adjust, Adjust(key="fee", account="erin", amount=D("-1.50"), reason="fee")
    )
    assert isinstance(reply, ErrorReply) and "cannot pay 1.50" in reply.error
    assert await balance(ledger, "erin") == D("1.00")
    # Made unrestricted, the same adjustment goes through.
    await ledger.run(users.on_set_user, SetUser(login="erin", restricted=False))
    done = await ledger.run(
        money.on_adjust, Adjust(key="fee", account="erin", amount=D("-1.50"), reason="fee")
    )
    assert not isinstance(done, ErrorReply)
    assert await balance(ledger, "erin") == D("-0.50")


# ----------------------------------------------------------------- the hold state machine


async def test_a_hold_moves_once_pending_to_posted_or_voided_and_never_back(ledger):
    await add_user(ledger, "fay", "5.00")
    charged, cancelled = priced("fay", "0.30"), priced("fay", "0.40")
    await ledger.run(jobs.on_job_priced, charged)
    await ledger.run(jobs.on_job_priced, cancelled)
    async with ledger.pool.acquire() as conn:
        with pytest.raises(asyncpg.CheckViolationError, match="without its charge"):
            await conn.execute(
                "UPDATE holds SET state = 'posted' WHERE job_id = $1", charged.job_id
            )
        with pytest.raises(asyncpg.CheckViolationError, match="never changes"):
            await conn.execute("UPDATE holds SET amount = 0.01 WHERE job_id = $1", charged.job_id)
        with pytest.raises(asyncpg.CheckViolationError, match="void it"):
            await conn.execute("DELETE FROM holds WHERE job_id = $1", charged.job_id)
    await ledger.run(jobs.on_job_printed, printed(charged))
    await ledger.run(jobs.on_job_not_printed, cancellation(cancelled))
    async with ledger.pool.acquire() as conn:
        for job, state in (
            (charged, "voided"),
            (charged, "pending"),
            (cancelled, "posted"),
            (cancelled, "pending"),
        ):
            with pytest.raises(asyncpg.CheckViolationError, match="already, for good"):
                await conn.execute(
                    "UPDATE holds SET state = $2 WHERE job_id = $1", job.job_id, state
                )
        with pytest.raises(asyncpg.CheckViolationError, match="must be made pending"):
            await insert_hold(conn, "personal:fay", "0.10", state="posted")
        states = dict(await conn.fetch("SELECT job_id, state FROM holds"))
    assert states == {charged.job_id: "posted", cancelled.job_id: "voided"}
