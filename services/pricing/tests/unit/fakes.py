"""An in-memory stand-in for `platen.pricing.store.Store` (same methods), for running
pricing's handlers with no database."""

from __future__ import annotations

from datetime import UTC, datetime

from platen.events.printers import CostModel, Policy, ScopedPolicy


class FakeStore:
    def __init__(self, now: datetime | None = None) -> None:
        self.clock = now or datetime.now(UTC)
        # printer -> [(effective_at, model)], oldest first: version = index + 1
        self.schedules: dict[str, list[tuple[datetime, CostModel]]] = {}
        self.groups: dict[str, list[str]] = {}
        self.policies: dict[tuple[str, str], Policy] = {}
        self.users: dict[str, list[str]] = {}
        self.revisions: dict[str, int] = {}

    async def now(self) -> datetime:
        return self.clock

    async def add_schedule(self, printer: str, model: CostModel) -> int:
        self.groups.setdefault(printer, [])
        self.schedules.setdefault(printer, []).append((self.clock, model))
        return len(self.schedules[printer])

    async def latest_schedule(self, printer: str) -> tuple[int, CostModel] | None:
        versions = self.schedules.get(printer)
        return (len(versions), versions[-1][1]) if versions else None

    async def schedule_at(self, printer: str, at: datetime) -> tuple[int, CostModel] | None:
        versions = self.schedules.get(printer)
        if not versions:
            return None
        in_effect = [i for i, (since, _) in enumerate(versions) if since <= at]
        i = in_effect[-1] if in_effect else 0
        return i + 1, versions[i][1]

    async def printer_groups(self, printer: str) -> list[str]:
        return list(self.groups.get(printer, []))

    async def set_printer_groups(self, printer: str, groups: list[str]) -> bool:
        if printer not in self.groups:
            return False
        self.groups[printer] = sorted(set(groups))
        return True

    async def policies_for(self, printer: str) -> list[ScopedPolicy]:
        mine = [("printer", printer)] + [("group", g) for g in sorted(self.groups.get(printer, []))]
        return [
            ScopedPolicy(scope=scope, target=target, policy=self.policies[(scope, target)])
            for scope, target in mine
            if (scope, target) in self.policies
        ]

    async def set_policy(self, scope: str, target: str, policy: Policy) -> None:
        if policy.model_dump(exclude_defaults=True):
            self.policies[(scope, target)] = policy
        else:
            self.policies.pop((scope, target), None)

    async def user_groups(self, login: str | None) -> frozenset[str]:
        return frozenset(self.users.get(login, [])) if login else frozenset()

    async def set_user_groups(self, login: str, groups: list[str], revision: int) -> bool:
        if self.revisions.get(login, 0) > revision:
            return False
        self.users[login] = sorted(set(groups))
        self.revisions[login] = revision
        return True
