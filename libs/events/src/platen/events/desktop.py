"""Messages for one user's desktop (exchange `platen.desktop`, key `user.<login>.<kind>`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from platen.events.base import Login, Message
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


class PromptAccount(BaseModel):
    """An account the user may pick in the account-selection popup."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    account: str
    path: str
    charge_rate: Decimal


@register
class JobPrompt(Message):
    """A job waits for its user: confirm it, or choose the account that pays.

    Sent with a per-message TTL equal to the time left before `expires_at`, so a client
    that starts late sees it only while it can still be answered.
    """

    message_type: ClassVar[str] = "desktop.job_prompt"
    job_id: uuid.UUID
    kind: Literal["confirm", "choose_account"]
    document_name: str
    printer: str
    pages: int
    color_pages: int
    grayscale_pages: int
    copies: int
    duplex: bool
    cost: Money
    accounts: list[PromptAccount]
    allow_pin: bool
    expires_at: datetime
    messages: list[str] = Field(default_factory=list)


@register
class PromptClosed(Message):
    """A prompt can no longer be answered (answered, cancelled, expired): close its popup."""

    message_type: ClassVar[str] = "desktop.prompt_closed"
    job_id: uuid.UUID
    document_name: str
    outcome: Literal["authorized", "cancelled", "denied"]
    reason: str


@register
class AnswerResult(Message):
    """What became of one answer the user sent: accepted, or refused and why."""

    message_type: ClassVar[str] = "desktop.answer_result"
    job_id: uuid.UUID
    outcome: Literal["authorized", "denied", "cancelled", "refused"]
    reason: str | None = None
    account: str | None = None
    amount: Money | None = None


@register
class BroadcastNotice(Message):
    """A message from an administrator to every desktop (or a few)."""

    message_type: ClassVar[str] = "desktop.broadcast"
    text: str
    sender: str


DESKTOP_KINDS = {
    LowBalanceNotice: "low_balance",
    PrintedNotice: "job_printed",
    DeniedNotice: "job_denied",
    BalanceNotice: "balance",
    JobPrompt: "job_prompt",
    PromptClosed: "prompt_closed",
    AnswerResult: "answer_result",
    BroadcastNotice: "broadcast",
}


# ------------------------------------------------------------ from the desktop to the server

Pin = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Comment = Annotated[str, StringConstraints(max_length=500)]
BroadcastText = Annotated[str, StringConstraints(min_length=1, max_length=2000)]


@register
class JobAnswer(Message):
    """A user's answer to a `JobPrompt`, published on `platen.desktop.replies` with the
    routing key `user.<login>.answer`. The server trusts none of it: the routing key (and,
    with per-user broker identities, the AMQP `user_id`) must name `user`, and the ledger
    checks ownership, deadline, access and PIN again."""

    message_type: ClassVar[str] = "desktop.job_answer"
    job_id: uuid.UUID
    user: Login
    action: Literal["print", "cancel"]
    account: Annotated[str, StringConstraints(max_length=200)] | None = None
    pin: Pin | None = None
    comment: Comment | None = None


# The kind in the routing key of each message a desktop sends.
REPLY_KINDS = {JobAnswer: "answer"}


@register
class Broadcast(Message):
    """Command (`notification.broadcast`): send `text` to these users' desktops, or to
    every known desktop when `users` is empty."""

    message_type: ClassVar[str] = "notification.broadcast"
    text: BroadcastText
    users: list[Login] = Field(default_factory=list)
    sender: Annotated[str, StringConstraints(max_length=100)] = "administrator"
    expires_in_minutes: int | None = Field(default=None, gt=0, le=60 * 24 * 30)


@register
class BroadcastSent(Message):
    message_type: ClassVar[str] = "notification.broadcast.reply"
    desktops: int
