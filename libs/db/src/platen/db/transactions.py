"""A transaction whose COMMIT is checked.

PostgreSQL answers the COMMIT of a transaction in which a statement failed with ROLLBACK,
not with an error, and asyncpg's `Connection.transaction()` does not look at the answer. A
handler that caught a statement's error and went on would then have its delivery
acknowledged with nothing of it applied. Here the COMMIT must answer COMMIT.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import asyncpg


class RolledBack(RuntimeError):
    """PostgreSQL rolled the transaction back at its COMMIT: nothing of it was kept."""


@contextlib.asynccontextmanager
async def checked_transaction(conn: asyncpg.Connection) -> AsyncIterator[None]:
    """BEGIN; the block; COMMIT, which raises `RolledBack` unless PostgreSQL committed. On
    any error in the block, ROLLBACK (when the connection still answers) and the error."""
    await conn.execute("BEGIN")
    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception):
            await conn.execute("ROLLBACK")
        raise
    status = await conn.execute("COMMIT")
    if status != "COMMIT":
        raise RolledBack(f"the transaction ended in {status}, not COMMIT")
