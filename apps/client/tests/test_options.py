"""Command line, config file, and the answers typed or piped in."""

from __future__ import annotations

import os
import uuid

import pytest

from platen.client.answers import BadAnswer, parse_console, parse_json
from platen.client.config import ConfigError, load, with_credentials


def test_command_line_options():
    o = load(
        [
            "--user", "bob", "--amqp-url", "amqp://h/", "--minimized", "--silent",
            "--window-position", "bottom-left", "--default-selection", "pin",
            "--hide-balance", "--disable-notifications", "--debug",
        ]
    )  # fmt: skip
    assert (o.login, o.url, o.mode) == ("bob", "amqp://h/", "gui")
    assert o.minimized and o.silent and o.hide_balance and o.disable_notifications and o.debug
    assert (o.window_position, o.default_selection) == ("bottom-left", "pin")
    assert load(
        ["--user", "bob", "--amqp-url", "amqp://h/", "--window-position", "10, 20"]
    ).window_position == (10, 20)
    assert load(["--user", "bob", "--amqp-url", "amqp://h/", "--json"]).mode == "json"
    # A dotted login, in any case: kept as Platen keeps logins (lower case).
    assert load(["--user", "First.Last", "--amqp-url", "amqp://h/"]).login == "first.last"


def test_config_file_gives_the_connection_and_options(tmp_path):
    path = tmp_path / "client.toml"
    path.write_text(
        'url = "amqp://broker.example:5672/platen"\nuser = "alice"\npassword = "s3cr:t"\n'
        'window_position = "top-left"\nmode = "console"\n'
    )
    os.chmod(path, 0o600)
    o = load(["--config", str(path)])
    assert o.login == "alice" and o.mode == "console" and o.window_position == "top-left"
    assert o.url == "amqp://alice:s3cr%3At@broker.example:5672/platen"
    assert o.broker_user == "alice"
    # The command line wins over the file.
    assert (
        load(["--config", str(path), "--window-position", "bottom-right"]).window_position
        == "bottom-right"
    )


def test_a_readable_password_file_is_warned_about(tmp_path, capsys):
    path = tmp_path / "client.toml"
    path.write_text('url = "amqp://h/"\nuser = "alice"\npassword = "x"\n')
    os.chmod(path, 0o644)
    load(["--config", str(path)])
    assert "chmod 600" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "error"),
    [
        ('colour = "red"\n', "unknown setting(s) colour"),
        ("url = \n", "cannot be read"),
        ('url = "http://h/"\n', "must start with amqp://"),
        ('window_position = "middle"\n', "is not one of top-left"),
        ('default_selection = "nobody"\n', "default selection 'nobody'"),
        ('user = "a*b"\n', "not a valid login"),
        ('user = "platen-admin"\n', "not a valid login"),
    ],
)
def test_bad_config_is_refused_with_a_reason(tmp_path, content, error):
    path = tmp_path / "client.toml"
    path.write_text(content)
    with pytest.raises(ConfigError, match=None) as exc:
        load(["--config", str(path), *([] if "user" in content else ["--user", "bob"])])
    assert error in str(exc.value)


def test_missing_config_file():
    with pytest.raises(ConfigError, match="does not exist"):
        load(["--config", "/nonexistent/client.toml"])


def test_with_credentials_keeps_what_is_not_given():
    assert with_credentials("amqp://g:p@h:1/v", None, None) == "amqp://g:p@h:1/v"
    assert with_credentials("amqp://g:p@h:1/v", "bob", None) == "amqp://bob:p@h:1/v"


def test_json_answers():
    job = uuid.uuid4()
    a = parse_json(
        f'{{"job_id": "{job}", "action": "print", "account": "shared:x", "apply_to_all": true}}'
    )
    assert a.job == job and a.choice.account == "shared:x" and a.apply_to_all
    for bad, why in [
        ("[]", "JSON object"),
        ('{"job_id": "x", "action": "print"}', "job_id"),
        (f'{{"job_id": "{job}", "action": "maybe"}}', "print or cancel"),
        (f'{{"job_id": "{job}", "action": "print", "pin": 1234}}', "pin must be a string"),
        (f'{{"job_id": "{job}", "action": "print", "apply_to_all": "yes"}}', "true or false"),
    ]:
        with pytest.raises(BadAnswer, match=why):
            parse_json(bad)


def test_console_answers():
    a = parse_console('print 2 account=shared:acme pin=12 "comment=for project X" all')
    assert a.job == 2 and a.apply_to_all
    assert (a.choice.account, a.choice.pin, a.choice.comment) == (
        "shared:acme",
        "12",
        "for project X",
    )
    assert parse_console("cancel 1").choice.action == "cancel"
    for bad in ("print", "print x", "hello 1", "print 1 colour=red", 'print 1 "unclosed'):
        with pytest.raises(BadAnswer):
            parse_console(bad)
