"""`--install-autostart` and `--debug`: the entry a desktop session runs at log-in, and the
log file in the user's state folder; neither holds a secret."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from platen.client import autostart
from platen.client.main import run


def exec_argv(entry_text: str) -> list[str]:
    """The command an entry's Exec key runs, read as the desktop entry spec says (not as
    this module writes it): arguments apart by spaces; a quoted one in double quotes, in
    which a backslash escapes `"`, `` ` ``, `$` and `\\`; `%%` is a percent sign."""
    [line] = [x for x in entry_text.splitlines() if x.startswith("Exec=")]
    text = line.removeprefix("Exec=")
    args, i = [], 0
    while i < len(text):
        if text[i] == " ":
            i += 1
            continue
        if text[i] == '"':
            arg, i = [], i + 1
            while text[i] != '"':
                if text[i] == "\\" and text[i + 1] in '"`$\\':
                    i += 1
                arg.append(text[i])
                i += 1
            i += 1
        else:
            arg = []
            while i < len(text) and text[i] != " ":
                arg.append(text[i])
                i += 1
        args.append("".join(arg).replace("%%", "%"))
    return args


@pytest.mark.parametrize(
    "arg", ["plain", "with space", 'quo"te', "dol$ar", "back\\slash", "tick`", "100%", ""]
)
def test_every_argument_survives_the_exec_key(arg):
    entry = f"Exec=/usr/bin/python3 {autostart.quote_arg(arg)}\n"
    assert exec_argv(entry) == ["/usr/bin/python3", arg]


def test_install_writes_the_entry_with_the_options_given(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.chdir(tmp_path)
    Path("client.toml").write_text('url = "amqp://print.example.org/"\n')
    run(["--install-autostart", "--config", "client.toml", "--window-position", "bottom-left"])
    path = tmp_path / "cfg" / "autostart" / "platen-client.desktop"
    assert f"will start at log-in: {path}" in capsys.readouterr().out
    text = path.read_text()
    assert "[Desktop Entry]" in text and "Type=Application" in text
    assert exec_argv(text) == [
        sys.executable,
        "-m",
        "platen.client",
        "--config",
        str(tmp_path / "client.toml"),  # absolute: a session starts elsewhere
        "--window-position",
        "bottom-left",
    ]
    # Installed again with other options: replaced, not added to.
    run(["--install-autostart", "--config", "client.toml", "--minimized"])
    assert exec_argv(path.read_text())[-1] == "--minimized"
    assert os.listdir(path.parent) == ["platen-client.desktop"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--amqp-url", "amqp://bob:s3cret@print/"], "holds a password"),
        (["--console"], "leave out --console and --json"),
    ],
)
def test_what_cannot_go_in_an_entry_is_refused_and_nothing_written(
    tmp_path, monkeypatch, capsys, argv, message
):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    with pytest.raises(SystemExit) as stopped:
        run(["--install-autostart", *argv])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "s3cret" not in err
    assert not (tmp_path / "autostart").exists()


@pytest.mark.e2e
def test_the_entry_starts_the_client_which_logs_to_its_state_folder(amqp_url, display, tmp_path):
    """The real thing: install, then run the entry's command as a session would, with
    --debug; the client connects, and its log file says so, without the password."""
    parts = urlsplit(amqp_url)
    password = parts.password
    assert password
    config = tmp_path / "client.toml"
    plain = urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))
    config.write_text(f'url = "{plain}"\nuser = "{parts.username}"\npassword = "{password}"\n')
    config.chmod(0o600)
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "cfg"), "DISPLAY": display}
    state = tmp_path / "state"
    install = [sys.executable, "-m", "platen.client", "--install-autostart", "--user", "bob"]
    options = ["--config", str(config), "--debug", "--state-dir", str(state)]
    subprocess.run(
        [*install, *options, "--disable-notifications"], env=env, check=True, capture_output=True
    )
    entry = (tmp_path / "cfg" / "autostart" / "platen-client.desktop").read_text()
    assert "password" not in entry and f":{password}@" not in entry
    proc = subprocess.Popen(
        exec_argv(entry), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    log = state / "client-bob.log"
    try:
        deadline = time.monotonic() + 60
        # The server has no queue for bob: the client says it waits (after connecting).
        while "status waiting" not in (log.read_text() if log.exists() else ""):
            assert proc.poll() is None, "the client stopped"
            assert time.monotonic() < deadline, "the client never logged its connection"
            time.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(10)
    text = log.read_text()
    assert "platen-client for bob, logging to" in text
    # The broker URL is logged (by aio-pika), its password masked. (The test broker's
    # user may share its name with its password: the masked form is what is checked.)
    assert f":{password}@" not in text and ":******@" in text
    assert oct(log.stat().st_mode & 0o777) == "0o600"
