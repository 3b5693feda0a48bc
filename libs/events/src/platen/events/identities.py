"""Desktop sign-in: the credential a user's desktop client connects to the broker with."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from platen.events.base import Login, Message
from platen.events.registry import register


@register
class IssueCredential(Message):
    """Command to notification (`notification.credential.issue`): give `login` a new
    broker password for their desktop client. The previous one stops working."""

    message_type: ClassVar[str] = "notification.credential.issue"
    login: Login


@register
class Credential(Message):
    """Reply to `notification.credential.issue`. The password exists only in this reply
    (the broker keeps a salted hash of it): send it over TLS, never log it."""

    message_type: ClassVar[str] = "notification.credential"
    login: Login
    username: str
    password: str = Field(repr=False)
