"""The client's options: command line over config file over defaults.

The config file is TOML. Besides every long option (with `_` for `-`, e.g.
`window_position = "top-left"`), it may hold the broker connection: `url`, and `user` and
`password` to sign in with (they replace those in the URL). `user` is also the login whose
desktop this is, unless `--user` says otherwise.

Which credential the client connects with: `--amqp-url`, else a config file holding a
`password` (issued by an administrator, `platenctl user credential`: kiosks, scripts),
else this desktop's own credential from `--sign-in` (`credentials`), else the config
file's or the environment's URL as it is.
"""

from __future__ import annotations

import argparse
import getpass
import os
import re
import stat
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from platen.client import credentials
from platen.client.recent import default_config_dir
from platen.events.discovery import amqp_url as discovered_amqp_url
from platen.events.discovery import with_login
from platen.events.logins import is_valid_login
from platen.events.routing import DESKTOP_ID_PATTERN

CORNERS = ("top-left", "top-right", "bottom-left", "bottom-right")
SELECTIONS = ("personal", "list", "pin")
MODES = ("gui", "console", "json")
FILE_KEYS = {
    "url",
    "user",
    "password",
    "mode",
    "minimized",
    "silent",
    "window_position",
    "default_selection",
    "hide_balance",
    "disable_notifications",
    "debug",
    "noquit",
    "sign_in_url",
    "sign_in_cafile",
    "desktop",
}


class ConfigError(ValueError):
    """The command line or config file cannot be used; the message says why."""


@dataclass(frozen=True)
class Options:
    login: str
    url: str
    mode: str = "gui"
    minimized: bool = False
    silent: bool = False
    window_position: str | tuple[int, int] = "top-right"
    default_selection: str = "personal"
    hide_balance: bool = False
    disable_notifications: bool = False
    debug: bool = False
    state_dir: Path | None = None
    install_autostart: bool = False
    noquit: bool = False
    # `--sign-in`: ask the directory password, get this desktop's credential, keep it.
    sign_in: bool = False
    sign_in_url: str | None = None
    sign_in_cafile: str | None = None
    desktop: str = ""
    password_stdin: bool = False
    # Connected with the credential `--sign-in` kept (dropped when the server refuses it).
    signed_in: bool = False
    # No sign-in of any kind yet, but a sign-in address: a desktop given the site's config
    # (which holds no secret) signs in at its first start, then runs as usual.
    needs_sign_in: bool = False
    # The options this desktop set itself (command line or config file), which win over
    # the server's for a preference (serveroptions.effective).
    given: frozenset[str] = frozenset()

    @property
    def broker_user(self) -> str | None:
        return urlsplit(self.url).username


def window_position(text: str) -> str | tuple[int, int]:
    if text in CORNERS:
        return text
    m = re.fullmatch(r"\s*(-?\d+)\s*,\s*(-?\d+)\s*", text)
    if not m:
        raise ConfigError(
            f"window position {text!r} is not one of {', '.join(CORNERS)} or X,Y (pixels)"
        )
    return int(m.group(1)), int(m.group(2))


def with_credentials(url: str, user: str | None, password: str | None) -> str:
    """`url` signed in as `user` with `password` (those not given are kept)."""
    if user is None and password is None:
        return url
    # The URL may name several broker nodes (a cluster), which urllib cannot take apart.
    return with_login(url, user, password)


def read_config(path: Path) -> dict:
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc}") from None
    unknown = sorted(set(data) - FILE_KEYS)
    if unknown:
        raise ConfigError(f"config file {path}: unknown setting(s) {', '.join(unknown)}")
    if "password" in data and os.name == "posix":
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            print(
                f"warning: {path} holds a password and others may read it (chmod 600 it)",
                file=sys.stderr,
            )
    return data


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="platen-client",
        description="Show your print balance and answer Platen's print prompts.",
    )
    p.add_argument("--user", help="whose desktop this is (default: config file, then you)")
    p.add_argument("--config", type=Path, help="TOML file with url, user, password, options")
    p.add_argument("--amqp-url", help="broker URL (default: config file, then $PLATEN_AMQP_URL)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--console", action="store_true", help="text in this terminal, no windows")
    mode.add_argument(
        "--json", action="store_true", help="one JSON object per line; answers read from stdin"
    )
    p.add_argument("--minimized", action="store_true", default=None, help="start minimised")
    p.add_argument(
        "--silent",
        action="store_true",
        default=None,
        help="no popups about connection errors (it keeps retrying)",
    )
    p.add_argument(
        "--window-position",
        help="where the balance window goes: top-left, top-right, bottom-left, bottom-right or X,Y",
    )
    p.add_argument(
        "--default-selection",
        choices=SELECTIONS,
        help="what the account-selection popup offers first",
    )
    p.add_argument("--hide-balance", action="store_true", default=None, help="no balance window")
    p.add_argument(
        "--disable-notifications",
        action="store_true",
        default=None,
        help="no desktop notifications (messages still show in the client)",
    )
    p.add_argument(
        "--noquit",
        action="store_true",
        default=None,
        help="the client cannot be quit: closing the window leaves it running (in the "
        "tray, or minimised where there is none), and the tray's menu offers no quit",
    )
    p.add_argument(
        "--debug",
        action="store_true",
        default=None,
        help="log what the client does to a file in your state folder "
        "($XDG_STATE_HOME/platen-client) and to stderr",
    )
    p.add_argument(
        "--install-autostart",
        action="store_true",
        help="start the client, with the other options given, at each log-in "
        "(an XDG autostart entry in ~/.config/autostart), then exit",
    )
    p.add_argument(
        "--sign-in",
        action="store_true",
        help="sign this desktop in with your directory password (asked once), keep the "
        "credential the server issues for it, then exit",
    )
    p.add_argument("--sign-in-url", help="the sign-in address (https://…; default: config file)")
    p.add_argument("--sign-in-cafile", help="CA file for the sign-in address's certificate")
    p.add_argument("--desktop", help="this desktop's id for --sign-in (default: its host name)")
    p.add_argument(
        "--password-stdin",
        action="store_true",
        help="for --sign-in from a script: read the password from the first line of stdin",
    )
    p.add_argument("--state-dir", type=Path, help=argparse.SUPPRESS)
    return p


def load(argv: list[str] | None = None) -> Options:
    """The options for this run; raises ConfigError with a message for the user."""
    args = parser().parse_args(argv)
    file = read_config(args.config) if args.config else {}

    given: set[str] = set()

    def pick(name: str, default):
        value = getattr(args, name, None)
        if value is None:
            value = file.get(name)
        if value is None:
            return default
        given.add(name)
        return value

    login = args.user or file.get("user") or getpass.getuser()
    if not is_valid_login(login):
        raise ConfigError(f"{login!r} is not a valid login")
    login = login.lower()  # as Platen keeps every login (they match without regard to case)
    signed_in = False
    stored = None
    if not args.amqp_url and "password" not in file and not args.sign_in:
        stored = credentials.load(login, default_config_dir())
    if args.amqp_url:
        url = args.amqp_url
    elif stored is not None:
        url = with_credentials(stored.url, stored.username, stored.password)
        signed_in = True
    elif "url" in file:
        user = file.get("user")
        url = with_credentials(str(file["url"]), user and user.lower(), file.get("password"))
    else:
        url = discovered_amqp_url()
    desktop = (args.desktop or file.get("desktop") or credentials.default_desktop()).lower()
    if not re.fullmatch(DESKTOP_ID_PATTERN, desktop):
        raise ConfigError(f"desktop id {desktop!r}: letters, digits, '.' and '-', 63 at most")
    if not url.startswith(("amqp://", "amqps://")):
        raise ConfigError(f"broker URL must start with amqp:// or amqps://, not {url[:20]!r}")
    mode = "json" if args.json else "console" if args.console else file.get("mode", "gui")
    if mode not in MODES:
        raise ConfigError(f"mode {mode!r} is not one of {', '.join(MODES)}")
    selection = pick("default_selection", "personal")
    if selection not in SELECTIONS:
        raise ConfigError(f"default selection {selection!r} is not one of {', '.join(SELECTIONS)}")
    return Options(
        login=login,
        url=url,
        mode=mode,
        minimized=bool(pick("minimized", False)),
        silent=bool(pick("silent", False)),
        window_position=window_position(str(pick("window_position", "top-right"))),
        default_selection=selection,
        hide_balance=bool(pick("hide_balance", False)),
        disable_notifications=bool(pick("disable_notifications", False)),
        debug=bool(pick("debug", False)),
        state_dir=args.state_dir,
        install_autostart=args.install_autostart,
        noquit=bool(pick("noquit", False)),
        sign_in=args.sign_in,
        sign_in_url=args.sign_in_url or file.get("sign_in_url"),
        sign_in_cafile=args.sign_in_cafile or file.get("sign_in_cafile"),
        desktop=desktop,
        password_stdin=args.password_stdin,
        signed_in=signed_in,
        needs_sign_in=bool(
            (args.sign_in_url or file.get("sign_in_url"))
            and not (args.amqp_url or "password" in file or stored or args.sign_in)
            and mode != "json"  # a script's stdin is its answers: it signs in with --sign-in
        ),
        given=frozenset(given),
    )
