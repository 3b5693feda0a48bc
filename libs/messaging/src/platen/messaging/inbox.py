"""The inbox: remember each applied message id in the effect's transaction."""

from __future__ import annotations

import asyncpg


async def claim(conn: asyncpg.Connection, consumer: str, message_id: str) -> bool:
    """Record `message_id` for `consumer`. False when it was applied before (a redelivery)."""
    row = await conn.fetchrow(
        """INSERT INTO inbox (consumer, message_id) VALUES ($1, $2)
           ON CONFLICT DO NOTHING RETURNING 1""",
        consumer,
        message_id,
    )
    return row is not None


async def claim_many(conn: asyncpg.Connection, consumer: str, message_ids: list[str]) -> set[str]:
    """`claim` for several ids in one statement: those not applied before. An id given
    twice is claimed once (its first delivery is applied, the other skipped)."""
    rows = await conn.fetch(
        """INSERT INTO inbox (consumer, message_id)
           SELECT $1, id FROM unnest($2::text[]) AS ids (id)
           ON CONFLICT DO NOTHING RETURNING message_id""",
        consumer,
        message_ids,
    )
    return {r["message_id"] for r in rows}


async def store_reply(
    conn: asyncpg.Connection,
    consumer: str,
    message_id: str,
    reply_type: str,
    version: int,
    body: bytes,
) -> None:
    await conn.execute(
        """UPDATE inbox SET reply_type = $3, reply_version = $4, reply_body = $5
           WHERE consumer = $1 AND message_id = $2""",
        consumer,
        message_id,
        reply_type,
        version,
        body,
    )


async def stored_reply(
    conn: asyncpg.Connection, consumer: str, message_id: str
) -> tuple[str, int, bytes] | None:
    row = await conn.fetchrow(
        "SELECT reply_type, reply_version, reply_body FROM inbox "
        "WHERE consumer = $1 AND message_id = $2",
        consumer,
        message_id,
    )
    if row is None or row["reply_type"] is None:
        return None
    return row["reply_type"], row["reply_version"], row["reply_body"]
