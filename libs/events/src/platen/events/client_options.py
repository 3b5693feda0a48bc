"""Client options set by the administrator (`platenctl client ...`), site-wide or per group.

What each option means and which values it takes is decided here, once, for the three
parties that read them: platenctl (to refuse a bad value before sending it), the
notification service (which keeps them and refuses a bad value again) and the desktop
client (which skips a value it cannot use rather than trust the server blindly).

Every value is a string, as typed on the command line, kept in its normal form
(`normal_value`). Nothing in an option is ever run or rendered as markup: a title and a
template are plain text (no `<`, `>` or `&`, so a notification service that renders
markup renders none), a link is https and opened only when the user clicks it, a logo is a
small PNG or GIF, checked by its signature and size.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field, StringConstraints

from platen.events.base import (
    Command,
    DesktopMessage,
    DesktopReply,
    GroupName,
    Login,
    Query,
    Reply,
)

# The rules, with no pydantic (the desktop client reads them at start), named here too.
from platen.events.client_option_rules import (  # noqa: F401
    CORNERS,
    LOGO_MAX_BYTES,
    OPTION_HELP,
    OPTION_KEYS,
    RESTRICTIVE,
    SELECTIONS,
    TEMPLATE_FIELDS,
    TEMPLATE_MAX,
    TEXT_MAX,
    BadOption,
    normal_value,
    render,
    usable,
)
from platen.events.registry import register

# ----------------------------------------------------------------------------- messages

OptionKey = Annotated[str, StringConstraints(min_length=1, max_length=40)]
OptionValue = Annotated[str, StringConstraints(max_length=(LOGO_MAX_BYTES * 4) // 3 + 4)]


@register
class SetClientOption(Command):
    """Command (`notification.client.set`): set one client option for the whole site, or
    for one group (which then wins over the site for its members)."""

    message_type: ClassVar[str] = "notification.client.set"
    key: OptionKey
    value: OptionValue
    group: GroupName | None = None


@register
class UnsetClientOption(Command):
    """Command (`notification.client.unset`): remove one client option of the site or of
    a group (the site's value, or the client's default, applies again)."""

    message_type: ClassVar[str] = "notification.client.unset"
    key: OptionKey
    group: GroupName | None = None


@register
class ClientOptionsChanged(Reply):
    """The reply to set and unset: how many desktops are sent their new options."""

    message_type: ClassVar[str] = "notification.client.changed"
    desktops: int


@register
class ShowClientOptions(Query):
    """Query (`notification.client.show`): the options of the site and of every group, and
    with `user`, what that user's desktop is sent (site, then their groups)."""

    message_type: ClassVar[str] = "notification.client.show"
    user: Login | None = None


@register
class ClientOptionsView(Reply):
    message_type: ClassVar[str] = "notification.client.options"
    site: dict[str, str]
    groups: dict[str, dict[str, str]]
    user: Login | None = None
    user_groups: list[str] = Field(default_factory=list)
    effective: dict[str, str] | None = None


@register
class ClientOptionsNotice(DesktopMessage):
    """The options the server gives this user's desktop (site, then their groups), sent
    when they change and when the client says hello. `revision` grows with every notice
    the server composes: a client keeps the highest it has seen, so a notice delivered
    late never undoes a newer one."""

    message_type: ClassVar[str] = "desktop.client_options"
    desktop_kind: ClassVar[str] = "client_options"
    revision: int
    options: dict[str, str]


@register
class ClientHello(DesktopReply):
    """A client has started (or connected again): the server answers with its options.
    Published on `platen.desktop.replies` with the routing key `user.<login>.hello`."""

    message_type: ClassVar[str] = "desktop.hello"
    desktop_kind: ClassVar[str] = "hello"
    user: Login
