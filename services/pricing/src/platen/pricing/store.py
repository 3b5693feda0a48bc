"""Pricing's tables: printers, their versioned schedules, policies and users' groups."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from platen.events.printers import CostModel, Policy, PrinterView, ScopedPolicy


async def add_schedule(conn: asyncpg.Connection, printer: str, model: CostModel) -> int:
    """Make `model` the printer's newest schedule version (creating the printer)."""
    await conn.execute(
        "INSERT INTO printers (name) VALUES ($1) ON CONFLICT (name) DO NOTHING", printer
    )
    # The row lock serialises versions of one printer: two changes at once get 2 and 3.
    await conn.execute("SELECT 1 FROM printers WHERE name = $1 FOR UPDATE", printer)
    return await conn.fetchval(
        """INSERT INTO schedules (printer, version, model, effective_at)
           SELECT $1, coalesce(max(version), 0) + 1, $2, clock_timestamp()
           FROM schedules WHERE printer = $1
           RETURNING version""",
        printer,
        model.model_dump(mode="json", exclude_defaults=True),
    )


async def latest_schedule(conn: asyncpg.Connection, printer: str) -> tuple[int, CostModel] | None:
    row = await conn.fetchrow(
        "SELECT version, model FROM schedules WHERE printer = $1 ORDER BY version DESC LIMIT 1",
        printer,
    )
    return None if row is None else (row["version"], CostModel.model_validate(row["model"]))


async def schedule_at(
    conn: asyncpg.Connection, printer: str, at: datetime
) -> tuple[int, CostModel] | None:
    """The version in effect at `at`. A job captured before the printer had any price (it
    was set up while the job waited to be priced) gets the first version."""
    row = await conn.fetchrow(
        """SELECT version, model FROM schedules WHERE printer = $1 AND effective_at <= $2
           ORDER BY version DESC LIMIT 1""",
        printer,
        at,
    ) or await conn.fetchrow(
        "SELECT version, model FROM schedules WHERE printer = $1 ORDER BY version LIMIT 1",
        printer,
    )
    return None if row is None else (row["version"], CostModel.model_validate(row["model"]))


async def printer_groups(conn: asyncpg.Connection, printer: str) -> list[str]:
    groups = await conn.fetchval("SELECT groups FROM printers WHERE name = $1", printer)
    return list(groups or [])


async def set_printer_groups(conn: asyncpg.Connection, printer: str, groups: list[str]) -> bool:
    done = await conn.execute(
        "UPDATE printers SET groups = $2, updated_at = now() WHERE name = $1",
        printer,
        sorted(set(groups)),
    )
    return done != "UPDATE 0"


async def policies_for(conn: asyncpg.Connection, printer: str) -> list[ScopedPolicy]:
    """The printer's own policy first, then its groups' policies by group name."""
    rows = await conn.fetch(
        """SELECT scope, target, policy FROM policies
           WHERE (scope = 'printer' AND target = $1)
              OR (scope = 'group' AND target = ANY(
                    SELECT unnest(groups) FROM printers WHERE name = $1))
           ORDER BY scope DESC, target""",
        printer,
    )
    return [
        ScopedPolicy(
            scope=r["scope"], target=r["target"], policy=Policy.model_validate(r["policy"])
        )
        for r in rows
    ]


async def set_policy(conn: asyncpg.Connection, scope: str, target: str, policy: Policy) -> None:
    body = policy.model_dump(mode="json", exclude_defaults=True)
    if not body:
        await conn.execute("DELETE FROM policies WHERE scope = $1 AND target = $2", scope, target)
        return
    await conn.execute(
        """INSERT INTO policies (scope, target, policy) VALUES ($1, $2, $3)
           ON CONFLICT (scope, target) DO UPDATE
             SET policy = EXCLUDED.policy, updated_at = now()""",
        scope,
        target,
        body,
    )


async def user_groups(conn: asyncpg.Connection, login: str | None) -> frozenset[str]:
    if login is None:
        return frozenset()
    groups = await conn.fetchval("SELECT groups FROM user_groups WHERE login = $1", login)
    return frozenset(groups or [])


async def set_user_groups(conn: asyncpg.Connection, login: str, groups: list[str]) -> None:
    await conn.execute(
        """INSERT INTO user_groups (login, groups) VALUES ($1, $2)
           ON CONFLICT (login) DO UPDATE SET groups = EXCLUDED.groups, updated_at = now()""",
        login,
        sorted(set(groups)),
    )


async def printer_view(conn: asyncpg.Connection, printer: str) -> PrinterView | None:
    schedule = await latest_schedule(conn, printer)
    if schedule is None:
        return None
    version, model = schedule
    return PrinterView(
        name=printer,
        price_per_page=model.page,
        schedule_version=version,
        cost_model=model,
        groups=await printer_groups(conn, printer),
        policies=await policies_for(conn, printer),
    )
