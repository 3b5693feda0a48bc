"""Client options: what each key takes, in its normal form, and what is refused and why."""

from __future__ import annotations

import base64

import pytest

from platen.events.client_options import (
    LOGO_MAX_BYTES,
    OPTION_KEYS,
    BadOption,
    normal_value,
    render,
    usable,
)

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 40


@pytest.mark.parametrize(
    ("key", "value", "normal"),
    [
        ("hide_balance", " Yes ", "true"),
        ("allow_quit", "OFF", "false"),
        ("default_selection", "list", "list"),
        ("window_position", "10, -20", "10,-20"),
        ("window_position", "bottom-left", "bottom-left"),
        ("title", "  Library printing ", "Library printing"),
        ("colour", "#1A2B3C", "#1a2b3c"),
        ("details_url", "https://print.example.org/help?x=1", "https://print.example.org/help?x=1"),
        ("template.printed", "{document} on {printer}: {cost}", "{document} on {printer}: {cost}"),
        ("logo", base64.b64encode(PNG).decode(), base64.b64encode(PNG).decode()),
    ],
)
def test_good_values_in_their_normal_form(key, value, normal):
    assert normal_value(key, value) == normal


@pytest.mark.parametrize(
    ("key", "value", "why"),
    [
        ("balance", "x", "unknown client option 'balance'"),
        ("hide_balance", "perhaps", "true or false"),
        ("default_selection", "all", "one of personal, list, pin"),
        ("window_position", "middle", "top-left"),
        ("title", "", "1 to 80 characters"),
        ("title", "x" * 81, "1 to 80 characters"),
        ("title", "a\nb", "no control characters"),
        ("title", "<span foreground='red'>x</span>", "no <, > or &"),
        ("colour", "red", "#rgb or #rrggbb"),
        ("colour", "#12345", "#rgb or #rrggbb"),
        ("details_url", "http://example.org/", "https://"),
        ("details_url", "javascript:alert(1)", "https://"),
        ("details_url", "https:///nohost", "host name"),
        ("details_url", "https://a.example/ b", "no spaces"),
        ("template.denied", "{document.__class__}", "may use only {document}"),
        ("template.denied", "{cost}", "may use only"),
        ("template.denied", "a { b", "brace"),
        ("template.low_balance", "<b>{balance}</b>", "no <, > or &"),
        ("logo", "not base64!", "base64-encoded PNG or GIF"),
        ("logo", base64.b64encode(b"<svg onload=x>").decode(), "PNG or GIF image"),
        ("logo", base64.b64encode(PNG + b"\0" * LOGO_MAX_BYTES).decode(), "at most 16384 bytes"),
    ],
)
def test_bad_values_are_refused_with_the_reason(key, value, why):
    with pytest.raises(BadOption) as exc:
        normal_value(key, value)
    assert why in str(exc.value)


def test_every_key_has_help_and_a_rule():
    for key in OPTION_KEYS:
        with pytest.raises(BadOption):
            normal_value(key, "\x00")


def test_usable_keeps_only_known_keys_with_good_values():
    got = usable({"title": "Hi", "colour": "blue", "run": "rm -rf", "hide_balance": "1"})
    assert got == {"title": "Hi", "hide_balance": "true"}


def test_a_template_is_substituted_never_formatted():
    assert render("{document} costs {cost}", {"document": "a.pdf", "cost": "0.10"}) == (
        "a.pdf costs 0.10"
    )
    # A value that looks like a placeholder stays as it is: one pass, no re-reading.
    assert render("{document}", {"document": "{cost}", "cost": "1"}) == "{cost}"
