"""`platen-client --install-autostart`: start the client with the desktop session, the
freedesktop.org way (an XDG autostart entry in ~/.config/autostart, which GNOME, KDE,
Xfce, MATE, Cinnamon and LXQt read)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

ENTRY_NAME = "platen-client.desktop"
# Options that make no sense at every log-in, or are not options of the started client.
NOT_KEPT = {"--install-autostart"}
# Characters that make the desktop entry spec quote an argument of Exec.
_RESERVED = set(" \t\n\"'\\><~|&;$*?#()`")


class AutostartError(ValueError):
    """The entry cannot be written as asked; the message says why."""


def autostart_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "autostart"


def quote_arg(arg: str) -> str:
    """One argument of an Exec key (desktop entry spec, "The Exec key")."""
    arg = arg.replace("%", "%%")  # a lone % would be a field code
    if not arg or any(c in _RESERVED for c in arg):
        escaped = "".join("\\" + c if c in '"`$\\' else c for c in arg)
        return f'"{escaped}"'
    return arg


def client_argv(argv: list[str]) -> list[str]:
    """The client's own options as given, to start it the same way at log-in: without
    `--install-autostart`, with the config file's path made absolute. A broker URL holding
    a password is refused: the entry is readable by others, the config file need not be."""
    kept: list[str] = []
    args = iter(argv)
    for arg in args:
        name, has_value, value = arg.partition("=")
        if name in NOT_KEPT:
            continue
        if name in ("--config", "--amqp-url", "--state-dir") and not has_value:
            value = next(args, "")
        if name == "--amqp-url" and urlsplit(value).password:
            raise AutostartError(
                "the broker URL holds a password, which the autostart entry would show to "
                "anyone: put it in the config file (--config) instead"
            )
        if name in ("--config", "--state-dir"):
            value = str(Path(value).expanduser().absolute())
        if name in ("--config", "--amqp-url", "--state-dir"):
            kept += [name, value]
        else:
            kept.append(arg)
    return kept


def entry(argv: list[str], python: str | None = None) -> str:
    command = [python or sys.executable, "-m", "platen.client", *client_argv(argv)]
    return (
        "[Desktop Entry]\n"
        "Type=Application\n"
        "Name=Platen\n"
        "Comment=Print balance and print job questions\n"
        f"Exec={' '.join(quote_arg(a) for a in command)}\n"
        "Terminal=false\n"
        "NoDisplay=true\n"
        "X-GNOME-Autostart-enabled=true\n"
    )


def install(argv: list[str], directory: Path | None = None) -> Path:
    """Write (or replace) the entry; returns its path."""
    if any(a in ("--console", "--json") for a in argv):
        raise AutostartError("autostart starts the windows: leave out --console and --json")
    text = entry(argv)
    folder = directory or autostart_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / ENTRY_NAME
    partial = path.with_suffix(".tmp")
    partial.write_text(text)
    partial.replace(path)  # whole or not at all: a session never reads half an entry
    return path
