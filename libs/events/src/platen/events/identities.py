"""Broker sign-in: the credential a user's desktop client connects to the broker with, and
the identities of print servers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar

from pydantic import BaseModel, Field, StringConstraints

from platen.events.base import Command, Login, Query, Reply
from platen.events.registry import register


@register
class IssueCredential(Command):
    """Command to notification (`notification.credential.issue`): give `login` a new
    broker password for their desktop client. The previous one stops working."""

    message_type: ClassVar[str] = "notification.credential.issue"
    login: Login


@register
class Credential(Reply):
    """Reply to `notification.credential.issue`. The password exists only in this reply
    (the broker keeps a salted hash of it): send it over TLS, never log it."""

    message_type: ClassVar[str] = "notification.credential"
    # Not kept in the inbox for redeliveries (platen.messaging.handling).
    holds_secret: ClassVar[bool] = True
    login: Login
    username: str
    password: str = Field(repr=False)


# A print server's name: a host name or any short name (it appears in broker user names,
# `platen-print-server.NAME`, which no login may take: see `base.is_reserved_login`).
PRINT_SERVER_NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$"
PrintServerName = Annotated[str, StringConstraints(pattern=PRINT_SERVER_NAME_PATTERN)]


@register
class AddPrintServer(Command):
    """Command to notification (`notification.printserver.add`): give print server `name`
    a broker identity of its own, with only a print server's permissions. A print server
    that has one gets a new password; the previous one stops working."""

    message_type: ClassVar[str] = "notification.printserver.add"
    name: PrintServerName


@register
class PrintServerCredential(Reply):
    """Reply to `notification.printserver.add`: what the print server's CUPS backend signs
    in with. The password exists only in this reply (never stored by Platen; the broker
    keeps a salted hash of it): send it over TLS, never log it."""

    message_type: ClassVar[str] = "notification.printserver.credential"
    # Not kept in the inbox for redeliveries (platen.messaging.handling).
    holds_secret: ClassVar[bool] = True
    name: PrintServerName
    username: str
    password: str = Field(repr=False)


@register
class RemovePrintServer(Command):
    """Command to notification (`notification.printserver.remove`): delete print server
    `name`'s broker identity and close its connections."""

    message_type: ClassVar[str] = "notification.printserver.remove"
    name: PrintServerName


@register
class ListPrintServers(Query):
    """Query to notification (`notification.printserver.list`): the print servers that
    have an identity."""

    message_type: ClassVar[str] = "notification.printserver.list"


class PrintServerSummary(BaseModel):
    name: PrintServerName
    username: str
    added_at: datetime


@register
class PrintServerList(Reply):
    """Reply to `notification.printserver.list` and `notification.printserver.remove`
    (the print servers left)."""

    message_type: ClassVar[str] = "notification.printserver.list.reply"
    print_servers: list[PrintServerSummary] = Field(default_factory=list)
