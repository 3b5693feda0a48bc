"""What each client option means and which values it takes (`client_options`), with no
pydantic: the desktop client applies these rules at start without loading the models."""

from __future__ import annotations

import base64
import binascii
import re
from urllib.parse import urlsplit

LOGO_MAX_BYTES = 16 * 1024
TEXT_MAX = 80
TEMPLATE_MAX = 500
CORNERS = ("top-left", "top-right", "bottom-left", "bottom-right")
SELECTIONS = ("personal", "list", "pin")

# The names a template may use, by template; `{name}` is replaced by its value, and
# nothing else in a template is interpreted.
TEMPLATE_FIELDS = {
    "template.printed": ("document", "printer", "cost", "balance"),
    "template.denied": ("document", "printer", "reason"),
    "template.low_balance": ("balance", "available", "threshold"),
}

# Where a user's groups disagree, the value that restricts the desktop more wins.
RESTRICTIVE = {"hide_balance": "true", "allow_quit": "false"}

OPTION_HELP = {
    "hide_balance": "true: no balance window (a desktop cannot show it)",
    "allow_quit": "false: the user cannot quit the client (a desktop may forbid it itself)",
    "default_selection": f"what the account popup offers first: {', '.join(SELECTIONS)}",
    "window_position": f"where the balance window goes: {', '.join(CORNERS)} or X,Y",
    "title": f"the balance window's title (plain text, at most {TEXT_MAX} characters)",
    "colour": "the balance window's accent colour: #rgb or #rrggbb",
    "logo": f"a PNG or GIF of at most {LOGO_MAX_BYTES} bytes, base64 (platenctl: @file)",
    "details_url": "an https link shown under the balance (opened only when clicked)",
    "details_text": f"the text of that link (at most {TEXT_MAX} characters)",
    **{
        key: f"the text told when {event}; may use " + ", ".join(f"{{{f}}}" for f in fields)
        for (key, fields), event in zip(
            TEMPLATE_FIELDS.items(),
            ("a job is printed", "a job is denied", "credit is low"),
            strict=True,
        )
    },
}
OPTION_KEYS = tuple(OPTION_HELP)


class BadOption(ValueError):
    """An unknown key or a value the key does not take; the message says why."""


_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
_POSITION = re.compile(r"-?\d{1,5},-?\d{1,5}")
_COLOUR = re.compile(r"#(?:[0-9a-f]{3}|[0-9a-f]{6})")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_IMAGE_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a")


def _boolean(key: str, value: str) -> str:
    word = value.strip().lower()
    if word in _TRUE:
        return "true"
    if word in _FALSE:
        return "false"
    raise BadOption(f"{key} must be true or false, not {value!r}")


def _plain(key: str, value: str, limit: int) -> str:
    text = value.strip()
    if not text or len(text) > limit:
        raise BadOption(f"{key} must be 1 to {limit} characters long")
    if any(not ch.isprintable() for ch in text):
        raise BadOption(f"{key} must be plain text (no control characters or line breaks)")
    if any(ch in "<>&" for ch in text):
        raise BadOption(f"{key} must be plain text (no <, > or &: nothing is rendered as markup)")
    return text


def _template(key: str, value: str) -> str:
    text = value.strip()
    if not text or len(text) > TEMPLATE_MAX:
        raise BadOption(f"{key} must be 1 to {TEMPLATE_MAX} characters long")
    if any(ch in "<>&" for ch in text) or any(not ch.isprintable() and ch != "\n" for ch in text):
        raise BadOption(f"{key} must be plain text (no <, > or & and no control characters)")
    allowed = TEMPLATE_FIELDS[key]
    for name in _PLACEHOLDER.findall(text):
        if name not in allowed:
            raise BadOption(
                f"{key} may use only {', '.join(f'{{{f}}}' for f in allowed)}, not {{{name}}}"
            )
    if _PLACEHOLDER.sub("", text).count("{") or _PLACEHOLDER.sub("", text).count("}"):
        raise BadOption(f"{key} has a brace that opens or closes no {{name}}")
    return text


def _https(key: str, value: str) -> str:
    url = value.strip()
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise BadOption(f"{key} must be an https:// link with a host name, not {value[:40]!r}")
    if len(url) > 500 or any(not ch.isprintable() or ch.isspace() for ch in url):
        raise BadOption(f"{key} must be at most 500 characters, with no spaces")
    return url


def _logo(key: str, value: str) -> str:
    data = value.strip()
    if len(data) > (LOGO_MAX_BYTES * 4) // 3 + 4:
        raise BadOption(f"{key} must be at most {LOGO_MAX_BYTES} bytes")
    try:
        image = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise BadOption(f"{key} must be a base64-encoded PNG or GIF") from None
    if len(image) > LOGO_MAX_BYTES:
        raise BadOption(f"{key} must be at most {LOGO_MAX_BYTES} bytes, not {len(image)}")
    if not image.startswith(_IMAGE_SIGNATURES):
        raise BadOption(f"{key} must be a PNG or GIF image")
    return data


def normal_value(key: str, value: str) -> str:
    """`value` of option `key` in its normal form; raises BadOption with the reason."""
    if key not in OPTION_HELP:
        raise BadOption(f"unknown client option {key!r} (known: {', '.join(OPTION_KEYS)})")
    if key in ("hide_balance", "allow_quit"):
        return _boolean(key, value)
    if key == "default_selection":
        if value.strip() not in SELECTIONS:
            raise BadOption(f"default_selection must be one of {', '.join(SELECTIONS)}")
        return value.strip()
    if key == "window_position":
        text = value.replace(" ", "")
        if text not in CORNERS and not _POSITION.fullmatch(text):
            raise BadOption(f"window_position must be one of {', '.join(CORNERS)} or X,Y")
        return text
    if key in ("title", "details_text"):
        return _plain(key, value, TEXT_MAX)
    if key == "colour":
        colour = value.strip().lower()
        if not _COLOUR.fullmatch(colour):
            raise BadOption(f"colour must be #rgb or #rrggbb, not {value[:20]!r}")
        return colour
    if key == "details_url":
        return _https(key, value)
    if key == "logo":
        return _logo(key, value)
    return _template(key, value)


def usable(options: dict[str, str]) -> dict[str, str]:
    """The options whose key is known and whose value is good, in normal form; the others
    are left out (a client reading a newer or a tampered server's options)."""
    good = {}
    for key, value in options.items():
        try:
            good[key] = normal_value(key, value)
        except (BadOption, TypeError, AttributeError):
            continue
    return good


def render(template: str, values: dict[str, str]) -> str:
    """A template with each `{name}` replaced by its value: a plain substitution, never
    `str.format` (which would let a template reach into the values' attributes)."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)
