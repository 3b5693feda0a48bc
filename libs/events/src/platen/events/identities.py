"""Broker sign-in: the credential a user's desktop client connects to the broker with, and
the identities of print servers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StringConstraints

from platen.events.base import Command, Login, Query, Reply
from platen.events.registry import register
from platen.events.routing import DESKTOP_ID_PATTERN


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


# ---------------------------------------------------------------- signed-in desktops
#
# A desktop signs in once with its user's directory password and is issued a broker
# credential of its own (`routing.desktop_broker_user`). The sign-in itself is not a broker
# message: the client posts `SignInRequest` to the notification service over HTTPS and gets
# `SignInGranted` or `SignInRefused` back on the same connection, so the password never
# enters the broker (docs/security.md "Signing in with the directory password").

DesktopId = Annotated[str, StringConstraints(pattern=DESKTOP_ID_PATTERN, to_lower=True)]


class SignInRequest(BaseModel):
    """What `platen-client --sign-in` posts: who, their directory password, which desktop."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    login: Login
    # SecretStr: shown as `**********` in every repr, str() and log line.
    password: SecretStr = Field(max_length=1024)
    desktop: DesktopId


class SignInGranted(BaseModel):
    """The desktop's own broker credential: `username` (`<login>~<desktop>`) and
    `password`. Exists only in this answer and in the desktop's store (the broker keeps a
    salted hash). `url`: the broker address desktops use, without credentials, if the site
    set one (`PLATEN_DESKTOP_AMQP_URL`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    login: Login
    desktop: DesktopId
    username: str
    password: SecretStr
    url: str | None = None


class SignInRefused(BaseModel):
    """Why nothing was issued. `retry_after`: seconds before another attempt is taken
    (too many failures for this login or from this address)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    error: str
    retry_after: float | None = None


@register
class ListDesktops(Query):
    """Query to notification (`notification.desktop.list`): the desktops `login` signed in
    from, each with a credential of its own."""

    message_type: ClassVar[str] = "notification.desktop.list"
    login: Login


class DesktopSummary(BaseModel):
    desktop: DesktopId
    username: str
    signed_in_at: datetime
    # The address the sign-in came from, as the notification service saw it.
    source: str | None = None


@register
class DesktopList(Reply):
    """Reply to `notification.desktop.list` and `notification.desktop.revoke` (the
    desktops left)."""

    message_type: ClassVar[str] = "notification.desktop.list.reply"
    login: Login
    desktops: list[DesktopSummary] = Field(default_factory=list)


@register
class RevokeDesktop(Command):
    """Command to notification (`notification.desktop.revoke`): delete the broker user of
    `login`'s desktop `desktop` and close its connections: that desktop is signed out and
    must sign in again; the user's other desktops keep working."""

    message_type: ClassVar[str] = "notification.desktop.revoke"
    login: Login
    desktop: DesktopId
