"""Periodic quotas: an amount a group's members are given every day, week, month or term."""

from __future__ import annotations

from datetime import date, datetime
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from platen.events.accounts import GroupName
from platen.events.base import Command, Part, Query, Reply
from platen.events.money import Money
from platen.events.registry import register

Period = Literal["day", "week", "month", "term"]


@register
class SetQuota(Command):
    """Command to the ledger (`ledger.quota.set`): give each enabled member of `group`
    `amount` once per `period`, into their personal account. Setting it again replaces
    the group's quota (periods already given stay given).

    `cap`: add no more than brings the balance to `cap` ("top up to at most 20.00");
    `reset`: set the balance to `amount` instead of adding (unspent credit is taken back).
    A `term` period needs `terms`, the dates each term starts.
    """

    message_type: ClassVar[str] = "ledger.quota.set"
    group: GroupName
    amount: Money = Field(gt=0)
    period: Period
    cap: Money | None = Field(default=None, gt=0)
    reset: bool = False
    terms: list[date] = Field(default_factory=list, max_length=100)

    @model_validator(mode="after")
    def _consistent(self) -> SetQuota:
        if self.reset and self.cap is not None:
            raise ValueError("a quota either resets the balance or caps it, not both")
        if self.cap is not None and self.cap < self.amount:
            raise ValueError("the cap is below the amount: the amount would never be given")
        if (self.period == "term") != bool(self.terms):
            raise ValueError("terms (the dates each term starts) go with a term period only")
        return self


@register
class RemoveQuota(Command):
    """Command to the ledger (`ledger.quota.remove`): the group is given nothing more
    (what was given stays)."""

    message_type: ClassVar[str] = "ledger.quota.remove"
    group: GroupName


class QuotaView(Part):
    group: str
    amount: Money
    period: Period
    cap: Money | None = None
    reset: bool = False
    terms: list[date] = Field(default_factory=list)
    # The last period given, and when (None: never run yet).
    last_period: str | None = None
    last_run_at: datetime | None = None


@register
class QuotaSaved(Reply):
    """Reply to `ledger.quota.set`: the group's quota as saved."""

    message_type: ClassVar[str] = "ledger.quota.set.reply"
    quota: QuotaView


@register
class ListQuotas(Query):
    """Query to the ledger (`ledger.quota.list`): every group's quota."""

    message_type: ClassVar[str] = "ledger.quota.list"


@register
class QuotaList(Reply):
    message_type: ClassVar[str] = "ledger.quota.list.reply"
    quotas: list[QuotaView]


@register
class RunQuotas(Command):
    """Command to the ledger (`ledger.quota.run`): give every quota (or `group`'s) for
    the period `day` falls in (today when left out). Each group's period is given once,
    however often this runs and however many ledger replicas run it; the ledger also runs
    it by itself (`PLATEN_QUOTA_INTERVAL_SECONDS`)."""

    message_type: ClassVar[str] = "ledger.quota.run"
    group: GroupName | None = None
    day: date | None = None


class QuotaRunView(Part):
    group: str
    period: str  # "2026-12", "2026-W49", "2026-12-01", "term from 2026-09-01"
    # False: the period had been given already (by an earlier run), nothing done now.
    given: bool
    users: int = 0
    total: Money = Field(default=0)


@register
class QuotasRun(Reply):
    message_type: ClassVar[str] = "ledger.quota.run.reply"
    runs: list[QuotaRunView]
