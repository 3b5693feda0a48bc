"""`platenctl client set`: a bad key or value is refused before anything is sent; a logo is
read from its file and sent base64-encoded."""

from __future__ import annotations

import base64

import pytest
from typer.testing import CliRunner

from platen.ctl import client_options
from platen.ctl.main import app
from platen.events.client_options import ClientOptionsChanged, ClientOptionsView

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 40


@pytest.fixture
def sent(monkeypatch):
    calls = []

    def call(cmd):
        calls.append(cmd)
        return ClientOptionsChanged(desktops=3)

    monkeypatch.setattr(client_options, "call", call)
    return calls


@pytest.mark.parametrize(
    ("args", "why"),
    [
        (["set", "colour", "red"], "#rgb or #rrggbb"),
        (["set", "nonsense", "1"], "unknown client option 'nonsense'"),
        (["set", "--group", "a b", "title", "x"], "not a valid group name"),
        (["set", "logo", "@/nonexistent.png"], "cannot read /nonexistent.png"),
        (["unset", "nonsense"], "unknown client option"),
    ],
)
def test_bad_options_are_refused_before_anything_is_sent(sent, args, why):
    result = CliRunner().invoke(app, ["client", *args])
    assert result.exit_code == 1 and why in result.output
    assert sent == []


def test_set_sends_the_normal_value_and_a_logo_file_as_base64(sent, tmp_path):
    logo = tmp_path / "logo.png"
    logo.write_bytes(PNG)
    runner = CliRunner()
    result = runner.invoke(app, ["client", "set", "--group", "staff", "hide_balance", "YES"])
    assert result.exit_code == 0 and "sent to 3 desktops" in result.output
    assert runner.invoke(app, ["client", "set", "logo", f"@{logo}"]).exit_code == 0
    assert [(c.key, c.value, c.group) for c in sent] == [
        ("hide_balance", "true", "staff"),
        ("logo", base64.b64encode(PNG).decode(), None),
    ]


def test_show_lists_each_scope_and_a_users_options(monkeypatch):
    view = ClientOptionsView(
        site={"title": "Library", "logo": base64.b64encode(PNG).decode()},
        groups={"staff": {"hide_balance": "false"}},
        user="alice",
        user_groups=["staff"],
        effective={"title": "Library", "hide_balance": "false"},
    )
    asked = []
    monkeypatch.setattr(client_options, "call", lambda q: asked.append(q) or view)
    out = CliRunner().invoke(app, ["client", "show", "--user", "Alice"]).output
    assert asked[0].user == "alice"
    assert out.splitlines() == [
        "site:",
        f"  logo = <{len(PNG)} bytes>",  # not the base64 itself
        "  title = Library",
        "group staff:",
        "  hide_balance = false",
        "user alice (staff):",
        "  hide_balance = false",
        "  title = Library",
    ]
    bad = CliRunner().invoke(app, ["client", "show", "--user", "a b"])
    assert bad.exit_code == 1 and "not a valid login" in bad.output
