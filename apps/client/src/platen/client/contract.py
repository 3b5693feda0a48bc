"""The desktop's messages, GENERATED from the pydantic models of `platen.events` by
apps/client/generate_contract.py: do not edit; run `make contract` after changing them.

msgspec classes with the same fields, types, constraints, defaults, versions and upcasters
(the base classes, money and login types are in `platen.client.wire`).
"""

from __future__ import annotations

import datetime
import uuid
from decimal import Decimal
from typing import Annotated, ClassVar, Literal

import msgspec

from platen.client.wire import DesktopMessage, DesktopReply, Login, Money, Part, Upcaster
from platen.events.upcasting import sides_for_pages


def _LowBalanceNotice_v1(body: dict) -> dict:
    return body  # v2 only added the optional `text`


def _PrintedNotice_v1(body: dict) -> dict:
    return sides_for_pages(body)


def _DeniedNotice_v1(body: dict) -> dict:
    return body  # v2 only added the optional `text`


def _JobPrompt_v1(body: dict) -> dict:
    return sides_for_pages(body)


def _JobPrompt_v2(body: dict) -> dict:
    return body  # v3 only added optional fields to the accounts


class PromptAccount(Part):
    """`platen.events.desktop.PromptAccount` (its documentation is there)."""

    account: str
    path: str
    charge_rate: Decimal
    code: str | None = None
    available: Money | None = None


class LowBalanceNotice(DesktopMessage):
    """`platen.events.desktop.LowBalanceNotice` (its documentation is there)."""

    message_type: ClassVar[str] = "desktop.low_balance"
    schema_version: ClassVar[int] = 2
    desktop_kind: ClassVar[str] = "low_balance"
    upcasters: ClassVar[dict[int, Upcaster]] = {1: _LowBalanceNotice_v1}
    balance: Money
    available: Money
    threshold: Money
    text: str | None = None


class PrintedNotice(DesktopMessage):
    """`platen.events.desktop.PrintedNotice` (its documentation is there)."""

    message_type: ClassVar[str] = "desktop.job_printed"
    schema_version: ClassVar[int] = 2
    desktop_kind: ClassVar[str] = "job_printed"
    upcasters: ClassVar[dict[int, Upcaster]] = {1: _PrintedNotice_v1}
    job_id: uuid.UUID
    document_name: str
    printer: str
    sides: int
    copies: int
    cost: Money
    balance: Money


class DeniedNotice(DesktopMessage):
    """`platen.events.desktop.DeniedNotice` (its documentation is there)."""

    message_type: ClassVar[str] = "desktop.job_denied"
    schema_version: ClassVar[int] = 2
    desktop_kind: ClassVar[str] = "job_denied"
    upcasters: ClassVar[dict[int, Upcaster]] = {1: _DeniedNotice_v1}
    job_id: uuid.UUID
    document_name: str
    printer: str
    reason: str
    text: str | None = None


class BalanceNotice(DesktopMessage):
    """`platen.events.desktop.BalanceNotice` (its documentation is there)."""

    message_type: ClassVar[str] = "desktop.balance"
    desktop_kind: ClassVar[str] = "balance"
    balance: Money
    available: Money


class JobPrompt(DesktopMessage):
    """`platen.events.desktop.JobPrompt` (its documentation is there)."""

    message_type: ClassVar[str] = "desktop.job_prompt"
    schema_version: ClassVar[int] = 3
    desktop_kind: ClassVar[str] = "job_prompt"
    upcasters: ClassVar[dict[int, Upcaster]] = {1: _JobPrompt_v1, 2: _JobPrompt_v2}
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
    expires_at: datetime.datetime
    messages: list[str] = msgspec.field(default_factory=list)


class PromptClosed(DesktopMessage):
    """`platen.events.desktop.PromptClosed` (its documentation is there)."""

    message_type: ClassVar[str] = "desktop.prompt_closed"
    desktop_kind: ClassVar[str] = "prompt_closed"
    job_id: uuid.UUID
    document_name: str
    outcome: Literal["authorized", "cancelled", "denied"]
    reason: str


class AnswerResult(DesktopMessage):
    """`platen.events.desktop.AnswerResult` (its documentation is there)."""

    message_type: ClassVar[str] = "desktop.answer_result"
    desktop_kind: ClassVar[str] = "answer_result"
    job_id: uuid.UUID
    outcome: Literal["authorized", "denied", "cancelled", "refused"]
    reason: str | None = None
    account: str | None = None
    amount: Money | None = None


class BroadcastNotice(DesktopMessage):
    """`platen.events.desktop.BroadcastNotice` (its documentation is there)."""

    message_type: ClassVar[str] = "desktop.broadcast"
    desktop_kind: ClassVar[str] = "broadcast"
    text: str
    sender: str


class ClientOptionsNotice(DesktopMessage):
    """`platen.events.client_options.ClientOptionsNotice` (its documentation is there)."""

    message_type: ClassVar[str] = "desktop.client_options"
    desktop_kind: ClassVar[str] = "client_options"
    revision: int
    options: dict[str, str]


class JobAnswer(DesktopReply):
    """`platen.events.desktop.JobAnswer` (its documentation is there)."""

    message_type: ClassVar[str] = "desktop.job_answer"
    desktop_kind: ClassVar[str] = "answer"
    logins: ClassVar[tuple[str, ...]] = ("user",)
    job_id: uuid.UUID
    user: Login
    action: Literal["print", "cancel"]
    account: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    pin: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None
    comment: Annotated[str, msgspec.Meta(max_length=500)] | None = None


class ClientHello(DesktopReply):
    """`platen.events.client_options.ClientHello` (its documentation is there)."""

    message_type: ClassVar[str] = "desktop.hello"
    desktop_kind: ClassVar[str] = "hello"
    logins: ClassVar[tuple[str, ...]] = ("user",)
    user: Login


# Each message a desktop is sent, by its type.
DESKTOP_MESSAGES = {
    m.message_type: m
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
# The kind in the routing key of each message a desktop sends.
REPLY_KINDS = {m: m.desktop_kind for m in (JobAnswer, ClientHello)}
