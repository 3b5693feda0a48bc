"""The account aggregate: users, their accounts, charges and balances."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, ClassVar, Literal

from pydantic import Field, StringConstraints

from platen.events.base import (
    Command,
    Event,
    GroupName,
    JobEvent,
    Login,
    Part,
    Query,
    Reply,
    sides_for_pages,
    upcasts,
)
from platen.events.money import Money
from platen.events.registry import register

# An account is named by its id ("personal:alice", "shared:physics/lab") or, in commands,
# by a login or a shared account's path; the ledger resolves which.
AccountRef = Annotated[str, StringConstraints(min_length=1, max_length=300)]
# A shared account's own name (no "/": that separates it from its parent in a path).
AccountName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_][A-Za-z0-9 _.@-]{0,63}$")]
IdempotencyKey = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Reason = Annotated[str, StringConstraints(min_length=1, max_length=500)]
Pin = Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z]{4,32}$")]
Rate = Annotated[Decimal, Field(gt=0, le=100)]
# A shared account's code: a short name users type to find it (e.g. a project number).
CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$"
AccountCode = Annotated[str, StringConstraints(pattern=CODE_PATTERN)]
AccountSelection = Literal["auto", "confirm", "choose"]
# An email address as a mail server takes it: one "@", no spaces or control characters
# (nothing that could end a header line), no display name.
EMAIL_PATTERN = r"^[^@\s\x00-\x1f\x7f<>,;]{1,64}@[A-Za-z0-9.-]{1,255}$"
EmailAddress = Annotated[str, StringConstraints(pattern=EMAIL_PATTERN, max_length=320)]


@register
class AddUser(Command):
    """Command to the ledger (`ledger.user.add`): create a user and their personal account.

    Adding a user who exists already changes nothing and answers with their current state.
    """

    message_type: ClassVar[str] = "ledger.user.add"
    login: Login
    initial_balance: Money = Field(default=0, ge=0)
    restricted: bool = True
    groups: list[GroupName] = Field(default_factory=list)


@register
class SetUser(Command):
    """Command to the ledger (`ledger.user.set`): change a user's settings.

    Fields left out (None) are not changed; `groups` replaces the user's groups.
    """

    message_type: ClassVar[str] = "ledger.user.set"
    schema_version: ClassVar[int] = 3
    login: Login
    restricted: bool | None = None
    overdraft_limit: Money | None = Field(default=None, ge=0)
    account_selection: AccountSelection | None = None
    default_account: AccountRef | None = None
    low_balance_threshold: Money | None = Field(default=None, ge=0)
    groups: list[GroupName] | None = None
    # Version 2: a disabled user prints nothing and is signed out of their desktop.
    enabled: bool | None = None
    # Version 3: the address low-balance and denial notices are mailed to ("" forgets it;
    # a directory sync sets it too), and whether this user wants them by email.
    email: EmailAddress | Literal[""] | None = None
    email_notices: bool | None = None

    @upcasts(1)
    def _v1_to_v2(body: dict) -> dict:
        return body  # v2 only added the optional `enabled`

    @upcasts(2)
    def _v2_to_v3(body: dict) -> dict:
        return body  # v3 only added the optional `email` and `email_notices`


@register
class ShowUser(Query):
    """Query to the ledger (`ledger.user.show`)."""

    message_type: ClassVar[str] = "ledger.user.show"
    login: Login


@register
class UserView(Reply):
    """Reply to `ledger.user.add` and `ledger.user.show`."""

    message_type: ClassVar[str] = "ledger.user"
    schema_version: ClassVar[int] = 3
    login: str
    restricted: bool
    overdraft_limit: Money = Decimal(0)
    account: str
    balance: Money
    held: Money
    available: Money
    account_selection: AccountSelection = "auto"
    default_account: str | None = None
    low_balance_threshold: Money | None = None
    groups: list[str] = Field(default_factory=list)
    holds: list[HoldView] = Field(default_factory=list)
    enabled: bool = True  # version 2
    email: str | None = None  # version 3
    email_notices: bool = False  # version 3

    @upcasts(1)
    def _v1_to_v2(body: dict) -> dict:
        return {**body, "enabled": True}

    @upcasts(2)
    def _v2_to_v3(body: dict) -> dict:
        return body  # v3 only added `email` and `email_notices`, with their defaults


@register
class ListUsers(Query):
    """Query to the ledger (`ledger.user.list`): users ordered by login, at most `limit`
    of them, only the members of `group` when given."""

    message_type: ClassVar[str] = "ledger.user.list"
    limit: Annotated[int, Field(ge=1, le=100_000)] = 1000
    group: GroupName | None = None


class UserSummary(Part):
    """One line of `ledger.user.list`: a user and their personal account."""

    login: str
    restricted: bool
    overdraft_limit: Money
    balance: Money
    held: Money
    available: Money
    groups: list[str] = Field(default_factory=list)
    enabled: bool


@register
class UserList(Reply):
    """Reply to `ledger.user.list`. `truncated`: more users matched than `limit`."""

    message_type: ClassVar[str] = "ledger.user.list.reply"
    users: list[UserSummary]
    truncated: bool = False


class HoldView(Part):
    job_id: uuid.UUID
    account: str
    amount: Money
    printer: str
    document_name: str
    created_at: datetime


@register
class UserAdded(Event):
    message_type: ClassVar[str] = "user.added"
    login: Login


@register
class UserGroupsSet(Event):
    """A user's groups are now `groups` (sent when the user is added and whenever an admin
    sets them), so services that decide by group, like pricing's colour policy, can keep
    their own copy instead of asking the ledger."""

    message_type: ClassVar[str] = "user.groups_set"
    schema_version: ClassVar[int] = 2
    login: Login
    groups: list[GroupName]
    # Version 2: `revision` grows with each change of one user's groups (counted in the
    # ledger's row of the user, under its lock), so a consumer that gets two announcements
    # out of order keeps the later one. The message's timestamp cannot say which is later:
    # AMQP carries it in whole seconds, and replicas' clocks differ.
    revision: int = Field(default=0, ge=0)

    @upcasts(1)
    def _v1_to_v2(body: dict) -> dict:
        return {**body, "revision": 0}  # sent before revisions: older than any counted one


@register
class UserContactSet(Event):
    """How to reach a user by email, and whether they want notices that way: sent when a
    user with an address is added, and whenever the address (a directory sync) or their
    choice (an admin) changes. `revision` grows with each change of one user, so a
    consumer that gets two out of order keeps the later one."""

    message_type: ClassVar[str] = "user.contact_set"
    login: Login
    email: str | None
    email_notices: bool
    revision: int = Field(ge=1)


@register
class UserDisabled(Event):
    """The user may no longer print or sign in; their desktop is signed out."""

    message_type: ClassVar[str] = "user.disabled"
    login: Login


@register
class UserEnabled(Event):
    message_type: ClassVar[str] = "user.enabled"
    login: Login


@register
class DeleteUser(Command):
    """Command to the ledger (`ledger.user.delete`): the user prints and signs in no more
    and is listed no more; their transactions and jobs stay, under their name. Refused
    while their balance is not zero or a job of theirs is held or waiting."""

    message_type: ClassVar[str] = "ledger.user.delete"
    login: Login


@register
class UserDeleted(Reply):
    """Reply to `ledger.user.delete`; `already`: they had been deleted before, at
    `deleted_at`, and nothing changed."""

    message_type: ClassVar[str] = "ledger.user.delete.reply"
    login: str
    deleted_at: datetime
    already: bool = False


@register
class JobCharged(JobEvent):
    """The ledger posted the charge for a printed job.

    Version 2: `pages` became `sides` (printed sides of one copy, as counted for the price).
    """

    message_type: ClassVar[str] = "job.charged"
    schema_version: ClassVar[int] = 2
    account: str
    sides: int
    copies: int
    amount: Money
    balance: Money

    @upcasts(1)
    def _v1_to_v2(body: dict) -> dict:
        return sides_for_pages(body)


@register
class BalanceChanged(Event):
    """An account's latest balance and available funds, at least once after every change.
    Jobs the ledger handles in one batch publish one per account, with the figures after
    the last of them; each job's own balance is on its `job.charged`."""

    message_type: ClassVar[str] = "account.balance_changed"
    account: str
    owner: Login | None
    balance: Money
    available: Money


@register
class BalanceLow(Event):
    """A personal account's available balance fell below its threshold (once per crossing)."""

    message_type: ClassVar[str] = "account.balance_low"
    account: str
    owner: Login
    balance: Money
    available: Money
    threshold: Money


@register
class PinLocked(Event):
    """PIN entry was locked after too many wrong PINs (`account.pin_locked`), for
    administrators: someone may be guessing a shared account's PIN. `scope` "user" locks
    the guesser (`user`, who made the failure that locked it) out of PIN entry everywhere;
    "account" locks everyone out of this account's PIN. Both until `until`."""

    message_type: ClassVar[str] = "account.pin_locked"
    account: str
    user: Login
    scope: Literal["user", "account"]
    failures: int
    until: datetime


# ----------------------------------------------------------------- shared accounts


@register
class AddAccount(Command):
    """Command (`ledger.account.add`): create a shared account, under `parent` if given."""

    message_type: ClassVar[str] = "ledger.account.add"
    schema_version: ClassVar[int] = 2
    name: AccountName
    parent: AccountRef | None = None
    pin: Pin | None = None
    charge_rate: Rate | None = None
    restricted: bool = False
    overdraft_limit: Money = Field(default=Decimal(0), ge=0)
    enabled: bool = True
    # Version 2: a code users may search for, and whether the users who may charge the
    # account see its balance in their account popup (not unless the admin says so).
    code: AccountCode | None = None
    balance_visible: bool = False

    @upcasts(1)
    def _v1_to_v2(body: dict) -> dict:
        return body  # v2 only added the optional `code` and `balance_visible`


@register
class SetAccount(Command):
    """Command (`ledger.account.set`): change a shared account. None leaves a field alone."""

    message_type: ClassVar[str] = "ledger.account.set"
    schema_version: ClassVar[int] = 2
    account: AccountRef
    pin: Pin | None = None
    clear_pin: bool = False
    charge_rate: Rate | None = None
    restricted: bool | None = None
    overdraft_limit: Money | None = Field(default=None, ge=0)
    enabled: bool | None = None
    # Version 2: as in `AddAccount`.
    code: AccountCode | None = None
    clear_code: bool = False
    balance_visible: bool | None = None

    @upcasts(1)
    def _v1_to_v2(body: dict) -> dict:
        return body  # v2 only added the optional `code`, `clear_code`, `balance_visible`


@register
class GrantAccess(Command):
    """Command (`ledger.account.grant` / `ledger.account.revoke`): who may charge an account."""

    message_type: ClassVar[str] = "ledger.account.grant"
    account: AccountRef
    users: list[Login] = Field(default_factory=list)
    groups: list[GroupName] = Field(default_factory=list)


@register
class RevokeAccess(Command):
    message_type: ClassVar[str] = "ledger.account.revoke"
    account: AccountRef
    users: list[Login] = Field(default_factory=list)
    groups: list[GroupName] = Field(default_factory=list)


@register
class ShowAccount(Query):
    message_type: ClassVar[str] = "ledger.account.show"
    account: AccountRef


@register
class AccountView(Reply):
    message_type: ClassVar[str] = "ledger.account"
    schema_version: ClassVar[int] = 2
    id: str
    kind: Literal["personal", "shared", "system"]
    path: str
    owner: str | None
    parent: str | None
    balance: Money
    held: Money
    available: Money
    restricted: bool
    overdraft_limit: Money
    charge_rate: Decimal | None
    effective_charge_rate: Decimal
    has_pin: bool
    enabled: bool
    users: list[str] = Field(default_factory=list)
    groups: list[str] = Field(default_factory=list)
    # Version 2 (see `AddAccount`).
    code: str | None = None
    balance_visible: bool = False

    @upcasts(1)
    def _v1_to_v2(body: dict) -> dict:
        return body  # v2 only added `code` and `balance_visible`, with defaults


@register
class ListAccounts(Query):
    message_type: ClassVar[str] = "ledger.account.list"
    kind: Literal["personal", "shared", "system"] | None = None


@register
class AccountList(Reply):
    message_type: ClassVar[str] = "ledger.account.list.reply"
    accounts: list[AccountView]


# ----------------------------------------------------------------- money in and out
# Each carries `key`, chosen by the caller: the same key twice is the same operation.


@register
class TopUp(Command):
    message_type: ClassVar[str] = "ledger.topup"
    key: IdempotencyKey
    account: AccountRef
    amount: Money = Field(gt=0)
    reason: Reason = "top-up"
    by: str = "admin"


@register
class Adjust(Command):
    message_type: ClassVar[str] = "ledger.adjust"
    key: IdempotencyKey
    account: AccountRef
    amount: Money
    reason: Reason
    by: str = "admin"


@register
class Refund(Command):
    """Refund a printed job, whole (amount None) or in part, to the account that paid."""

    message_type: ClassVar[str] = "ledger.refund"
    key: IdempotencyKey
    job_id: uuid.UUID
    amount: Money | None = Field(default=None, gt=0)
    reason: Reason
    by: str = "admin"


@register
class Transfer(Command):
    message_type: ClassVar[str] = "ledger.transfer"
    key: IdempotencyKey
    from_account: AccountRef
    to_account: AccountRef
    amount: Money = Field(gt=0)
    reason: Reason = "transfer"
    by: str = "admin"


class EntryView(Part):
    account: str
    amount: Money
    balance_after: Money


@register
class TransactionView(Reply):
    message_type: ClassVar[str] = "ledger.transaction"
    id: int
    op_key: str
    kind: str
    description: str
    job_id: uuid.UUID | None
    created_by: str
    created_at: datetime
    entries: list[EntryView]


@register
class Statement(Query):
    """Query (`ledger.statement`): an account's entries, oldest first."""

    message_type: ClassVar[str] = "ledger.statement"
    account: AccountRef
    since: datetime | None = None
    limit: int = Field(default=1000, ge=1, le=100_000)


class StatementLine(Part):
    at: datetime
    transaction_id: int
    kind: str
    description: str
    job_id: uuid.UUID | None
    amount: Money
    balance_after: Money


@register
class StatementView(Reply):
    """An account's lines, and its balance before the first and at the end.

    `closing_balance` is the account's balance now, even when the lines stop earlier.
    """

    message_type: ClassVar[str] = "ledger.statement.reply"
    schema_version: ClassVar[int] = 2
    account: str
    opening_balance: Money
    closing_balance: Money
    lines: list[StatementLine]
    # Version 2: true when the query's `limit` cut the lines short of the closing balance.
    truncated: bool = False

    @upcasts(1)
    def _v1_to_v2(body: dict) -> dict:
        return body  # v2 only added `truncated`, false unless said


@register
class VerifyLedger(Query):
    message_type: ClassVar[str] = "ledger.verify"


@register
class LedgerReport(Reply):
    message_type: ClassVar[str] = "ledger.verify.reply"
    transactions: int
    accounts: int
    pending_holds: int
    problems: list[str]


# ----------------------------------------------------------------- asking the user


class AccountOption(Part):
    account: str
    path: str
    charge_rate: Decimal
    # Since `job.input_required` version 4: the shared account's code, and what it has
    # available, only for an account whose balance its users may see.
    code: str | None = None
    available: Money | None = None


@register
class JobInputRequired(JobEvent):
    """The ledger needs the user's answer before the job may print.

    Version 3: `pages` became `sides` (printed sides of one copy, as counted
    for the price); `color_pages` and `grayscale_pages` became `color_sides` and
    `grayscale_sides`.

    Version 4: each account option may carry its `code` and, where its users may see
    it, its `available` balance.
    """

    message_type: ClassVar[str] = "job.input_required"
    schema_version: ClassVar[int] = 4
    sides: int
    copies: int
    cost: Money
    kind: Literal["confirm", "choose_account"]
    accounts: list[AccountOption]
    allow_pin: bool
    expires_at: datetime
    # Version 2: what the confirmation popup shows besides the cost, and what the
    # printer's policies had to say (pricing's `job.priced` messages).
    color_sides: int = 0
    grayscale_sides: int = 0
    duplex: bool = False
    messages: list[str] = Field(default_factory=list)

    @upcasts(1)
    def _v1_to_v2(body: dict) -> dict:
        return {
            **body,
            "color_pages": 0,
            "grayscale_pages": body["pages"],
            "duplex": False,
            "messages": [],
        }

    @upcasts(2)
    def _v2_to_v3(body: dict) -> dict:
        return sides_for_pages(body)

    @upcasts(3)
    def _v3_to_v4(body: dict) -> dict:
        return body  # v4 only added optional fields to the account options


@register
class AnswerJob(Command):
    """Command (`ledger.job.answer`): a user's answer to `job.input_required`.

    Sent by the notification service once it has checked who answered; the ledger checks
    everything again (ownership, deadline, access, PIN, funds).
    """

    message_type: ClassVar[str] = "ledger.job.answer"
    job_id: uuid.UUID
    user: Login
    action: Literal["print", "cancel"]
    account: AccountRef | None = None
    pin: Annotated[str, StringConstraints(max_length=64)] | None = None
    comment: Annotated[str, StringConstraints(max_length=500)] | None = None


@register
class AnswerOutcome(Reply):
    message_type: ClassVar[str] = "ledger.job.answer.reply"
    job_id: uuid.UUID
    outcome: Literal["authorized", "denied", "cancelled"]
    account: str | None = None
    amount: Money | None = None
    reason: str | None = None
