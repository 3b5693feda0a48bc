"""The options this desktop runs with: what the server gives it, narrowed by its own.

The administrator's options (`platenctl client set`, site ⊕ the user's groups, merged by
the server) arrive in `desktop.client_options`. A desktop's config file or command line
may narrow what the server allows, never widen it:

- a permission: the server hides the balance → hidden, whatever the desktop says; the
  desktop may hide it itself. The server allows quitting → the desktop may still forbid it.
- a preference (window position, the account popup's first choice): the desktop's own,
  where it set one; else the server's; else the client's default.
- branding and texts (title, colour, logo, link, templates): the server's only.

Every value from the server is checked again (`usable`): one the client cannot use is
left out, never trusted. Nothing from the server is run; texts are shown as plain text.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

from platen.client.config import Options, window_position
from platen.events.client_option_rules import TEMPLATE_FIELDS, render, usable


@dataclass(frozen=True)
class Effective:
    hide_balance: bool = False
    allow_quit: bool = True
    default_selection: str = "personal"
    window_position: str | tuple[int, int] = "top-right"
    title: str | None = None
    colour: str | None = None
    logo: bytes | None = None
    details_url: str | None = None
    details_text: str | None = None
    templates: dict[str, str] = field(default_factory=dict)

    def text(self, template: str, values: dict[str, str], default: str) -> str:
        """The administrator's text for `template` (e.g. "template.printed") filled in with
        `values`, or `default` when none is set."""
        chosen = self.templates.get(template)
        return default if chosen is None else render(chosen, values)


def effective(server: dict[str, str], local: Options) -> Effective:
    """What this desktop runs with, given the server's options and its own."""
    given = usable(server)

    def preference(name: str, default):
        if name in local.given:
            return getattr(local, name)
        if name in given:
            return window_position(given[name]) if name == "window_position" else given[name]
        return default

    logo = given.get("logo")
    return Effective(
        hide_balance=local.hide_balance or given.get("hide_balance") == "true",
        allow_quit=not local.noquit and given.get("allow_quit") != "false",
        default_selection=preference("default_selection", local.default_selection),
        window_position=preference("window_position", local.window_position),
        title=given.get("title"),
        colour=given.get("colour"),
        logo=base64.b64decode(logo) if logo else None,
        details_url=given.get("details_url"),
        details_text=given.get("details_text"),
        templates={k: v for k, v in given.items() if k in TEMPLATE_FIELDS},
    )
