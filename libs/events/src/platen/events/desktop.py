"""Messages for one user's desktop (exchange `platen.desktop`, key `user.<login>.<kind>`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from platen.events.base import (
    Command,
    DesktopMessage,
    DesktopReply,
    Login,
    Reply,
    sides_for_pages,
    upcasts,
)
from platen.events.client_options import ClientHello, ClientOptionsNotice
from platen.events.money import Money
from platen.events.registry import register


@register
class PrintedNotice(DesktopMessage):
    """Version 2: `pages` became `sides` (printed sides of one copy, as counted for the price)."""

    message_type: ClassVar[str] = "desktop.job_printed"
    schema_version: ClassVar[int] = 2
    desktop_kind: ClassVar[str] = "job_printed"
    job_id: uuid.UUID
    document_name: str
    printer: str
    sides: int
    copies: int
    cost: Money
    balance: Money

    @upcasts(1)
    def _v1_to_v2(body: dict) -> dict:
        return sides_for_pages(body)


@register
class DeniedNotice(DesktopMessage):
    """Version 2: `text`, the site's own wording (`platenctl notice template set denied`)
    when the administrator changed it; None: the client says it in the user's language."""

    message_type: ClassVar[str] = "desktop.job_denied"
    schema_version: ClassVar[int] = 2
    desktop_kind: ClassVar[str] = "job_denied"
    job_id: uuid.UUID
    document_name: str
    printer: str
    reason: str
    text: str | None = None

    @upcasts(1)
    def _v1_to_v2(body: dict) -> dict:
        return body  # v2 only added the optional `text`


@register
class BalanceNotice(DesktopMessage):
    message_type: ClassVar[str] = "desktop.balance"
    desktop_kind: ClassVar[str] = "balance"
    balance: Money
    available: Money


@register
class LowBalanceNotice(DesktopMessage):
    """Version 2: `text`, the site's own wording (`platenctl notice template set
    low-balance`) when the administrator changed it; None: the client's own, translated."""

    message_type: ClassVar[str] = "desktop.low_balance"
    schema_version: ClassVar[int] = 2
    desktop_kind: ClassVar[str] = "low_balance"
    balance: Money
    available: Money
    threshold: Money
    text: str | None = None

    @upcasts(1)
    def _v1_to_v2(body: dict) -> dict:
        return body  # v2 only added the optional `text`


class PromptAccount(BaseModel):
    """An account the user may pick in the account-selection popup."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)
    account: str
    path: str
    charge_rate: Decimal
    # Since `desktop.job_prompt` version 3: the shared account's code (users search by
    # it), and its available balance where the account lets its users see it.
    code: str | None = None
    available: Money | None = None


@register
class JobPrompt(DesktopMessage):
    """A job waits for its user: confirm it, or choose the account that pays.

    Sent with a per-message TTL equal to the time left before `expires_at`, so a client
    that starts late sees it only while it can still be answered.

    Version 2: `pages` became `sides` (printed sides of one copy, as counted
    for the price); `color_pages` and `grayscale_pages` became `color_sides` and
    `grayscale_sides`.

    Version 3: each account may carry its `code` and its `available` balance.
    """

    message_type: ClassVar[str] = "desktop.job_prompt"
    schema_version: ClassVar[int] = 3
    desktop_kind: ClassVar[str] = "job_prompt"
    job_id: uuid.UUID
    kind: Literal["confirm", "choose_account"]
    document_name: str
    printer: str
    sides: int
    color_sides: int
    grayscale_sides: int
    copies: int
    duplex: bool
    cost: Money
    accounts: list[PromptAccount]
    allow_pin: bool
    expires_at: datetime
    messages: list[str] = Field(default_factory=list)

    @upcasts(1)
    def _v1_to_v2(body: dict) -> dict:
        return sides_for_pages(body)

    @upcasts(2)
    def _v2_to_v3(body: dict) -> dict:
        return body  # v3 only added optional fields to the accounts


@register
class PromptClosed(DesktopMessage):
    """A prompt can no longer be answered (answered, cancelled, expired): close its popup."""

    message_type: ClassVar[str] = "desktop.prompt_closed"
    desktop_kind: ClassVar[str] = "prompt_closed"
    job_id: uuid.UUID
    document_name: str
    outcome: Literal["authorized", "cancelled", "denied"]
    reason: str


@register
class AnswerResult(DesktopMessage):
    """What became of one answer the user sent: accepted, or refused and why."""

    message_type: ClassVar[str] = "desktop.answer_result"
    desktop_kind: ClassVar[str] = "answer_result"
    job_id: uuid.UUID
    outcome: Literal["authorized", "denied", "cancelled", "refused"]
    reason: str | None = None
    account: str | None = None
    amount: Money | None = None


@register
class BroadcastNotice(DesktopMessage):
    """A message from an administrator to every desktop (or a few)."""

    message_type: ClassVar[str] = "desktop.broadcast"
    desktop_kind: ClassVar[str] = "broadcast"
    text: str
    sender: str


# Each message a desktop is sent, by the kind in its routing key (`user.<login>.<kind>`).
DESKTOP_KINDS = {
    m: m.desktop_kind
    for m in (
        LowBalanceNotice,
        PrintedNotice,
        DeniedNotice,
        BalanceNotice,
        JobPrompt,
        PromptClosed,
        AnswerResult,
        BroadcastNotice,
        ClientOptionsNotice,
    )
}


# ------------------------------------------------------------ from the desktop to the server

Pin = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Comment = Annotated[str, StringConstraints(max_length=500)]
BroadcastText = Annotated[str, StringConstraints(min_length=1, max_length=2000)]


@register
class JobAnswer(DesktopReply):
    """A user's answer to a `JobPrompt`, published on `platen.desktop.replies` with the
    routing key `user.<login>.answer`. The server trusts none of it: the routing key (and,
    with per-user broker identities, the AMQP `user_id`) must name `user`, and the ledger
    checks ownership, deadline, access and PIN again."""

    message_type: ClassVar[str] = "desktop.job_answer"
    desktop_kind: ClassVar[str] = "answer"
    job_id: uuid.UUID
    user: Login
    action: Literal["print", "cancel"]
    account: Annotated[str, StringConstraints(max_length=200)] | None = None
    pin: Pin | None = None
    comment: Comment | None = None


# The kind in the routing key of each message a desktop sends.
REPLY_KINDS = {JobAnswer: JobAnswer.desktop_kind, ClientHello: ClientHello.desktop_kind}


@register
class Broadcast(Command):
    """Command (`notification.broadcast`): send `text` to these users' desktops, or to
    every known desktop when `users` is empty."""

    message_type: ClassVar[str] = "notification.broadcast"
    text: BroadcastText
    users: list[Login] = Field(default_factory=list)
    sender: Annotated[str, StringConstraints(max_length=100)] = "administrator"
    expires_in_minutes: int | None = Field(default=None, gt=0, le=60 * 24 * 30)


@register
class BroadcastSent(Reply):
    message_type: ClassVar[str] = "notification.broadcast.reply"
    desktops: int
