"""Every SQL statement of pricing: printers, their versioned schedules, policies and
users' groups, over one connection (a delivery's transaction)."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from platen.events.printers import CostModel, Policy, ScopedPolicy


class Store:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def now(self) -> datetime:
        """The database's clock: what a quote is priced at, as a job is at its capture."""
        return await self.conn.fetchval("SELECT clock_timestamp()")

    async def add_schedule(self, printer: str, model: CostModel) -> int:
        """Make `model` the printer's newest schedule version (creating the printer)."""
        await self.conn.execute(
            "INSERT INTO printers (name) VALUES ($1) ON CONFLICT (name) DO NOTHING", printer
        )
        # The row lock serialises versions of one printer: two changes at once get 2 and 3.
        await self.conn.execute("SELECT 1 FROM printers WHERE name = $1 FOR UPDATE", printer)
        return await self.conn.fetchval(
            """INSERT INTO schedules (printer, version, model, effective_at)
               SELECT $1, coalesce(max(version), 0) + 1, $2, clock_timestamp()
               FROM schedules WHERE printer = $1
               RETURNING version""",
            printer,
            model.model_dump(mode="json", exclude_defaults=True),
        )

    async def latest_schedule(self, printer: str) -> tuple[int, CostModel] | None:
        row = await self.conn.fetchrow(
            "SELECT version, model FROM schedules WHERE printer = $1 ORDER BY version DESC LIMIT 1",
            printer,
        )
        return None if row is None else (row["version"], CostModel.model_validate(row["model"]))

    async def schedule_at(self, printer: str, at: datetime) -> tuple[int, CostModel] | None:
        """The version in effect at `at`. A job captured before the printer had any price
        (it was set up while the job waited to be priced) gets the first version."""
        row = await self.conn.fetchrow(
            """SELECT version, model FROM schedules WHERE printer = $1 AND effective_at <= $2
               ORDER BY version DESC LIMIT 1""",
            printer,
            at,
        ) or await self.conn.fetchrow(
            "SELECT version, model FROM schedules WHERE printer = $1 ORDER BY version LIMIT 1",
            printer,
        )
        return None if row is None else (row["version"], CostModel.model_validate(row["model"]))

    async def printer_groups(self, printer: str) -> list[str]:
        groups = await self.conn.fetchval("SELECT groups FROM printers WHERE name = $1", printer)
        return list(groups or [])

    async def set_printer_groups(self, printer: str, groups: list[str]) -> bool:
        done = await self.conn.execute(
            "UPDATE printers SET groups = $2, updated_at = now() WHERE name = $1",
            printer,
            sorted(set(groups)),
        )
        return done != "UPDATE 0"

    async def policies_for(self, printer: str) -> list[ScopedPolicy]:
        """The printer's own policy first, then its groups' policies by group name."""
        rows = await self.conn.fetch(
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

    async def set_policy(self, scope: str, target: str, policy: Policy) -> None:
        body = policy.model_dump(mode="json", exclude_defaults=True)
        if not body:
            await self.conn.execute(
                "DELETE FROM policies WHERE scope = $1 AND target = $2", scope, target
            )
            return
        await self.conn.execute(
            """INSERT INTO policies (scope, target, policy) VALUES ($1, $2, $3)
               ON CONFLICT (scope, target) DO UPDATE
                 SET policy = EXCLUDED.policy, updated_at = now()""",
            scope,
            target,
            body,
        )

    async def user_groups(self, login: str | None) -> frozenset[str]:
        if login is None:
            return frozenset()
        groups = await self.conn.fetchval("SELECT groups FROM user_groups WHERE login = $1", login)
        return frozenset(groups or [])

    async def set_user_groups(self, login: str, groups: list[str], revision: int) -> bool:
        """`login`'s groups as of the ledger's change number `revision`; False (nothing
        changed) when a later change is kept already."""
        done = await self.conn.fetchval(
            """INSERT INTO user_groups (login, groups, revision) VALUES ($1, $2, $3)
               ON CONFLICT (login) DO UPDATE
                   SET groups = EXCLUDED.groups, revision = $3, updated_at = now()
               WHERE user_groups.revision <= $3
               RETURNING 1""",
            login,
            sorted(set(groups)),
            revision,
        )
        return bool(done)
