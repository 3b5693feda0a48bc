"""The ledger's database operations. Callers run them inside one transaction."""

from __future__ import annotations

import uuid
from decimal import Decimal

import asyncpg


async def user_with_account(conn: asyncpg.Connection, login: str, *, lock: bool = False):
    """The user and their personal account, the account row locked when `lock`."""
    return await conn.fetchrow(
        f"""SELECT u.login, u.restricted, u.overdraft_limit, a.id AS account, a.balance
            FROM users u JOIN accounts a ON a.owner_login = u.login AND a.kind = 'personal'
            WHERE u.login = $1 {"FOR UPDATE OF a" if lock else ""}""",
        login,
    )


async def held(conn: asyncpg.Connection, account: str) -> Decimal:
    return await conn.fetchval(
        "SELECT coalesce(sum(amount), 0)::numeric(14, 2) FROM holds "
        "WHERE account_id = $1 AND state = 'pending'",
        account,
    )


async def post(
    conn: asyncpg.Connection,
    *,
    op_key: str,
    kind: str,
    description: str,
    entries: dict[str, Decimal],
    job_id: uuid.UUID | None = None,
) -> int | None:
    """Post a balanced transaction; None when `op_key` was posted before.

    The accounts are locked in a fixed order (by id) before any entry is written, so two
    transactions touching the same accounts queue up instead of deadlocking.
    """
    tx_id = await conn.fetchval(
        """INSERT INTO transactions (op_key, kind, job_id, description)
           VALUES ($1, $2, $3, $4) ON CONFLICT (op_key) DO NOTHING RETURNING id""",
        op_key,
        kind,
        job_id,
        description,
    )
    if tx_id is None:
        return None
    accounts = sorted(entries)
    await conn.execute(
        "SELECT 1 FROM accounts WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE", accounts
    )
    await conn.executemany(
        "INSERT INTO entries (transaction_id, account_id, amount) VALUES ($1, $2, $3)",
        [(tx_id, acc, entries[acc]) for acc in accounts if entries[acc] != 0],
    )
    return tx_id


async def balance(conn: asyncpg.Connection, account: str) -> Decimal:
    return await conn.fetchval("SELECT balance FROM accounts WHERE id = $1", account)


async def verify(conn: asyncpg.Connection) -> list[str]:
    """Every violation of the ledger's invariants, as sentences; empty when sound."""
    problems = []
    for r in await conn.fetch(
        """SELECT transaction_id, sum(amount) AS total FROM entries
           GROUP BY transaction_id HAVING sum(amount) <> 0"""
    ):
        problems.append(f"transaction {r['transaction_id']} sums to {r['total']}, not 0")
    for r in await conn.fetch(
        """SELECT a.id, a.balance, coalesce(sum(e.amount), 0) AS total
           FROM accounts a LEFT JOIN entries e ON e.account_id = a.id
           GROUP BY a.id, a.balance HAVING a.balance <> coalesce(sum(e.amount), 0)"""
    ):
        problems.append(
            f"account {r['id']} has balance {r['balance']} but entries sum to {r['total']}"
        )
    total = await conn.fetchval("SELECT coalesce(sum(amount), 0) FROM entries")
    if total != 0:
        problems.append(f"all entries sum to {total}, not 0")
    return problems
