"""Messages for one user's desktop (exchange `platen.desktop`, key `user.<login>.<kind>`)."""

from __future__ import annotations

import uuid
from typing import ClassVar

from platen.events.base import Message
from platen.events.money import Money
from platen.events.registry import register


@register
class PrintedNotice(Message):
    message_type: ClassVar[str] = "desktop.job_printed"
    job_id: uuid.UUID
    document_name: str
    printer: str
    pages: int
    copies: int
    cost: Money
    balance: Money


@register
class DeniedNotice(Message):
    message_type: ClassVar[str] = "desktop.job_denied"
    job_id: uuid.UUID
    document_name: str
    printer: str
    reason: str


@register
class BalanceNotice(Message):
    message_type: ClassVar[str] = "desktop.balance"
    balance: Money
    available: Money


@register
class LowBalanceNotice(Message):
    message_type: ClassVar[str] = "desktop.low_balance"
    balance: Money
    available: Money
    threshold: Money


DESKTOP_KINDS = {
    LowBalanceNotice: "low_balance",
    PrintedNotice: "job_printed",
    DeniedNotice: "job_denied",
    BalanceNotice: "balance",
}
