"""The account aggregate: users, their accounts, charges and balances."""

from __future__ import annotations

import uuid
from typing import ClassVar

from pydantic import Field

from platen.events.base import Login, Message
from platen.events.money import Money
from platen.events.registry import register


@register
class AddUser(Message):
    """Command to the ledger (`ledger.user.add`): create a user and their personal account.

    Adding a user who exists already changes nothing and answers with their current state.
    """

    message_type: ClassVar[str] = "ledger.user.add"
    login: Login
    initial_balance: Money = Field(default=0, ge=0)
    restricted: bool = True


@register
class ShowUser(Message):
    """Query to the ledger (`ledger.user.show`)."""

    message_type: ClassVar[str] = "ledger.user.show"
    login: Login


@register
class UserView(Message):
    """Reply to `ledger.user.add` and `ledger.user.show`."""

    message_type: ClassVar[str] = "ledger.user"
    login: str
    restricted: bool
    account: str
    balance: Money
    held: Money
    available: Money


@register
class UserAdded(Message):
    message_type: ClassVar[str] = "user.added"
    login: Login


@register
class JobCharged(Message):
    """The ledger posted the charge for a printed job."""

    message_type: ClassVar[str] = "job.charged"
    job_id: uuid.UUID
    user: Login
    account: str
    printer: str
    document_name: str
    pages: int
    copies: int
    amount: Money
    balance: Money


@register
class BalanceChanged(Message):
    message_type: ClassVar[str] = "account.balance_changed"
    account: str
    owner: Login | None
    balance: Money
    available: Money
