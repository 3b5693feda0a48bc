"""The ledger's database operations. Callers run them inside one transaction."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import asyncpg

from platen.account_ledger import rules


class NotFound(LookupError):
    """A user or account named in a command does not exist."""


# ----------------------------------------------------------------- users and accounts


async def user(conn: asyncpg.Connection, login: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM users WHERE login = $1", login)


async def user_groups(conn: asyncpg.Connection, login: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT group_name FROM group_members WHERE login = $1 ORDER BY group_name", login
    )
    return [r["group_name"] for r in rows]


async def set_groups(conn: asyncpg.Connection, login: str, groups: list[str]) -> None:
    await conn.execute("DELETE FROM group_members WHERE login = $1", login)
    if groups:
        await conn.executemany(
            "INSERT INTO groups (name) VALUES ($1) ON CONFLICT DO NOTHING", [(g,) for g in groups]
        )
        await conn.executemany(
            "INSERT INTO group_members (group_name, login) VALUES ($1, $2)",
            [(g, login) for g in sorted(set(groups))],
        )


async def account(
    conn: asyncpg.Connection, account_id: str, *, lock: bool = False
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT * FROM accounts WHERE id = $1 {'FOR UPDATE' if lock else ''}", account_id
    )


async def resolve(conn: asyncpg.Connection, ref: str) -> str:
    """The id of the account `ref` names: an id, a login (their personal account) or a
    shared account's path."""
    if ref.startswith(("personal:", "shared:", "system:")):
        candidates = [ref]
    else:
        candidates = [rules.personal_account(ref), rules.shared_account(ref)]
    for candidate in candidates:
        if await conn.fetchval("SELECT 1 FROM accounts WHERE id = $1", candidate):
            return candidate
    raise NotFound(f"no account or user named {ref!r}")


async def ancestors(conn: asyncpg.Connection, account_id: str) -> list[asyncpg.Record]:
    """The account and its parents, nearest first."""
    return await conn.fetch(
        """WITH RECURSIVE chain AS (
               SELECT a.*, 0 AS depth FROM accounts a WHERE id = $1
               UNION ALL
               SELECT p.*, c.depth + 1 FROM accounts p JOIN chain c ON p.id = c.parent_id)
           SELECT * FROM chain ORDER BY depth""",
        account_id,
    )


async def effective_charge_rate(conn: asyncpg.Connection, account_id: str) -> Decimal:
    for acc in await ancestors(conn, account_id):
        if acc["charge_rate"] is not None:
            return acc["charge_rate"]
    return Decimal(1)


async def usable(conn: asyncpg.Connection, account_id: str) -> bool:
    """Enabled, and so are all its parents."""
    return all(a["enabled"] for a in await ancestors(conn, account_id))


async def may_use(conn: asyncpg.Connection, login: str, account_id: str) -> bool:
    """Whether `login` may charge `account_id` by choosing it from a list: their own
    personal account, or a shared account granted to them or one of their groups (on it
    or on a parent)."""
    if account_id == rules.personal_account(login):
        return True
    chain = [a["id"] for a in await ancestors(conn, account_id) if a["kind"] == "shared"]
    if not chain:
        return False
    return bool(
        await conn.fetchval(
            """SELECT 1 FROM account_access
               WHERE account_id = ANY($1::text[]) AND (
                   (principal_kind = 'user' AND principal = $2) OR
                   (principal_kind = 'group' AND principal IN
                       (SELECT group_name FROM group_members WHERE login = $2)))
               LIMIT 1""",
            chain,
            login,
        )
    )


async def shared_accounts_for(conn: asyncpg.Connection, login: str) -> list[str]:
    """The shared accounts `login` may choose from a list, by path."""
    rows = await conn.fetch("SELECT id FROM accounts WHERE kind = 'shared' ORDER BY name")
    usable_ids = []
    for r in rows:
        if await may_use(conn, login, r["id"]) and await usable(conn, r["id"]):
            usable_ids.append(r["id"])
    return usable_ids


async def any_pin_accounts(conn: asyncpg.Connection) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT 1 FROM accounts WHERE kind = 'shared' AND pin_hash IS NOT NULL "
            "AND enabled LIMIT 1"
        )
    )


async def lock_accounts(conn: asyncpg.Connection, account_ids: list[str]) -> None:
    """Lock rows in one fixed order (by id): two transactions touching the same accounts
    queue up instead of deadlocking."""
    await conn.execute(
        "SELECT 1 FROM accounts WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE",
        sorted(set(account_ids)),
    )


async def lock_job(conn: asyncpg.Connection, job_id: uuid.UUID) -> None:
    """Take a job's events one at a time (until this transaction ends): a price and a
    cancellation handled at once must not both see "no hold yet"."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 7))", str(job_id))


# ----------------------------------------------------------------- balances and holds


async def held(conn: asyncpg.Connection, account_id: str) -> Decimal:
    return await conn.fetchval(
        "SELECT coalesce(sum(amount), 0)::numeric(14, 2) FROM holds "
        "WHERE account_id = $1 AND state = 'pending'",
        account_id,
    )


async def balance(conn: asyncpg.Connection, account_id: str) -> Decimal:
    return await conn.fetchval("SELECT balance FROM accounts WHERE id = $1", account_id)


async def pending_holds(conn: asyncpg.Connection, account_ids: list[str]) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT * FROM holds WHERE account_id = ANY($1::text[]) AND state = 'pending' "
        "ORDER BY created_at",
        account_ids,
    )


async def post(
    conn: asyncpg.Connection,
    *,
    op_key: str,
    kind: str,
    description: str,
    entries: dict[str, Decimal],
    job_id: uuid.UUID | None = None,
    created_by: str = "system",
) -> int | None:
    """Post a balanced transaction; None when `op_key` was posted before."""
    tx_id = await conn.fetchval(
        """INSERT INTO transactions (op_key, kind, job_id, description, created_by)
           VALUES ($1, $2, $3, $4, $5) ON CONFLICT (op_key) DO NOTHING RETURNING id""",
        op_key,
        kind,
        job_id,
        description,
        created_by,
    )
    if tx_id is None:
        return None
    accounts = sorted(entries)
    await lock_accounts(conn, accounts)
    await conn.executemany(
        "INSERT INTO entries (transaction_id, account_id, amount, balance_after) "
        "VALUES ($1, $2, $3, 0)",
        [(tx_id, acc, entries[acc]) for acc in accounts if entries[acc] != 0],
    )
    return tx_id


async def transaction_by_key(conn: asyncpg.Connection, op_key: str) -> int | None:
    return await conn.fetchval("SELECT id FROM transactions WHERE op_key = $1", op_key)


async def transaction(conn: asyncpg.Connection, tx_id: int):
    tx = await conn.fetchrow("SELECT * FROM transactions WHERE id = $1", tx_id)
    entries = await conn.fetch(
        "SELECT account_id, amount, balance_after FROM entries WHERE transaction_id = $1 "
        "ORDER BY id",
        tx_id,
    )
    return tx, entries


# ----------------------------------------------------------------- checks


MAX_HOLD_AGE = timedelta(days=1)


async def verify(conn: asyncpg.Connection, max_hold_age: timedelta = MAX_HOLD_AGE) -> list[str]:
    """Every violation of the ledger's invariants, as sentences; empty when sound.

    A hold has outlived its job when it is still pending after `max_hold_age`, after the
    job was closed (cancelled or failed), or after the job was charged.
    """
    problems = []
    for r in await conn.fetch(
        """SELECT transaction_id, sum(amount) AS total FROM entries
           GROUP BY transaction_id HAVING sum(amount) <> 0"""
    ):
        problems.append(f"transaction {r['transaction_id']} sums to {r['total']}, not 0")
    for r in await conn.fetch(
        """SELECT t.id FROM transactions t LEFT JOIN entries e ON e.transaction_id = t.id
           GROUP BY t.id HAVING count(e.id) < 2"""
    ):
        problems.append(f"transaction {r['id']} has fewer than two entries")
    for r in await conn.fetch(
        """SELECT a.id, a.balance, coalesce(sum(e.amount), 0) AS total
           FROM accounts a LEFT JOIN entries e ON e.account_id = a.id
           GROUP BY a.id, a.balance HAVING a.balance <> coalesce(sum(e.amount), 0)"""
    ):
        problems.append(
            f"account {r['id']} has balance {r['balance']} but its entries sum to {r['total']}"
        )
    total = await conn.fetchval("SELECT coalesce(sum(amount), 0) FROM entries")
    if total != 0:
        problems.append(f"all entries sum to {total}, not 0")
    for r in await conn.fetch(
        "SELECT job_id, created_at FROM holds WHERE state = 'pending' "
        "AND created_at < now() - $1::interval",
        max_hold_age,
    ):
        problems.append(f"hold for job {r['job_id']} is still pending since {r['created_at']}")
    for r in await conn.fetch(
        """SELECT h.job_id FROM holds h JOIN closed_jobs c ON c.job_id = h.job_id
           WHERE h.state = 'pending'"""
    ):
        problems.append(f"hold for job {r['job_id']} is still pending but the job was closed")
    for r in await conn.fetch(
        """SELECT h.job_id FROM holds h
           JOIN transactions t ON t.op_key = 'job:' || h.job_id || ':charge'
           WHERE h.state = 'pending'"""
    ):
        problems.append(f"hold for job {r['job_id']} is still pending but the job was charged")
    for r in await conn.fetch(
        """SELECT h.job_id FROM holds h
           WHERE h.state = 'posted' AND h.amount > 0 AND NOT EXISTS (
               SELECT 1 FROM transactions t WHERE t.op_key = 'job:' || h.job_id || ':charge')"""
    ):
        problems.append(f"hold for job {r['job_id']} is posted but no charge exists")
    for r in await conn.fetch(
        """SELECT t.job_id, sum(e.amount) AS refunded,
                  (SELECT -sum(e2.amount) FROM transactions t2
                     JOIN entries e2 ON e2.transaction_id = t2.id
                     JOIN accounts a2 ON a2.id = e2.account_id AND a2.kind <> 'system'
                    WHERE t2.op_key = 'job:' || t.job_id || ':charge') AS charged
           FROM transactions t JOIN entries e ON e.transaction_id = t.id
           JOIN accounts a ON a.id = e.account_id AND a.kind <> 'system'
           WHERE t.kind = 'refund' GROUP BY t.job_id"""
    ):
        if r["charged"] is None or r["refunded"] > r["charged"]:
            problems.append(
                f"job {r['job_id']} was refunded {r['refunded']} but charged {r['charged']}"
            )
    return problems
