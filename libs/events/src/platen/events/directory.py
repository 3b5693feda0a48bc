"""The site's directory: syncing users from it, and the rules for users Platen meets
there for the first time."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field, StringConstraints

from platen.events.base import Command, Part, Query, Reply
from platen.events.money import Money
from platen.events.registry import register

# A group's name, or "*" for anyone the directory knows.
RuleMatch = Annotated[str, StringConstraints(pattern=r"^(\*|[A-Za-z0-9_][A-Za-z0-9_.@-]{0,63})$")]


@register
class SyncDirectory(Command):
    """Command to the ledger (`ledger.directory.sync`): add the directory's users a
    new-user rule matches, update the groups, names, emails and cards of those it knows,
    and disable the users it no longer lists (never delete). `dry_run`: say what would be
    done and do nothing."""

    message_type: ClassVar[str] = "ledger.directory.sync"
    dry_run: bool = False


class DirectoryChange(Part):
    login: str
    # For an added user: the rule that made them; for a changed one: what changed.
    detail: str = ""


@register
class DirectorySynced(Reply):
    message_type: ClassVar[str] = "ledger.directory.sync.reply"
    source: str  # "ldap://…", "nss"
    dry_run: bool
    listed: int
    added: list[DirectoryChange] = Field(default_factory=list)
    changed: list[DirectoryChange] = Field(default_factory=list)
    disabled: list[str] = Field(default_factory=list)
    no_rule: list[str] = Field(default_factory=list)


class RuleView(Part):
    match: str
    position: int
    initial_balance: Money
    restricted: bool
    overdraft_limit: Money


@register
class SetNewUserRule(Command):
    """Command to the ledger (`ledger.rule.set`): what a user the directory knows, met for
    the first time, gets when they are in group `match` (or anyone: `*`). Rules are tried
    by `position` (lowest first; left out: after the others); the first that matches
    decides. Setting a group's rule again replaces it."""

    message_type: ClassVar[str] = "ledger.rule.set"
    match: RuleMatch
    position: Annotated[int, Field(ge=0, le=100_000)] | None = None
    initial_balance: Money = Field(default=0, ge=0)
    restricted: bool = True
    overdraft_limit: Money = Field(default=0, ge=0)


@register
class RemoveNewUserRule(Command):
    message_type: ClassVar[str] = "ledger.rule.remove"
    match: RuleMatch


@register
class ListNewUserRules(Query):
    message_type: ClassVar[str] = "ledger.rule.list"


@register
class NewUserRules(Reply):
    """Reply to `ledger.rule.set`, `.remove` and `.list`: every rule, in the order tried."""

    message_type: ClassVar[str] = "ledger.rule.list.reply"
    rules: list[RuleView]
