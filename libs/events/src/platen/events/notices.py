"""The wording of the notices users get on their desktop and by email (low balance, a job
denied): templates an administrator edits with `platenctl notice template`, kept by the
notification service."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import StringConstraints

from platen.events.base import Command, Part, Query, Reply
from platen.events.registry import register

NoticeName = Literal["low-balance", "denied"]
# A subject is one header line: no line break can be written into it.
Subject = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\r\n]*$")]
Body = Annotated[str, StringConstraints(min_length=1, max_length=4000)]


@register
class SetNoticeTemplate(Command):
    """Command to notification (`notification.template.set`): the subject and body of
    notice `name`, with placeholders in braces (`{balance}`, `{document}`, ...); the body is
    also the desktop's text. `reset` goes back to the built-in wording. An unknown
    placeholder is refused."""

    message_type: ClassVar[str] = "notification.template.set"
    name: NoticeName
    subject: Subject | None = None
    body: Body | None = None
    reset: bool = False


@register
class ShowNoticeTemplates(Query):
    """Query to notification (`notification.template.show`): the templates in use."""

    message_type: ClassVar[str] = "notification.template.show"


class NoticeTemplateView(Part):
    name: str
    subject: str
    body: str
    placeholders: list[str]
    custom: bool  # False: the built-in wording


@register
class NoticeTemplates(Reply):
    """Reply to `notification.template.set` and `notification.template.show`."""

    message_type: ClassVar[str] = "notification.template.list"
    templates: list[NoticeTemplateView]
