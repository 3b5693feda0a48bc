"""Where a signed-in desktop keeps the credential the server issued it
(`platen-client --sign-in`): never the user's password, only the desktop's own broker
password.

With the platform's keyring (python `keyring`, imported only here and only if installed:
the Secret Service on Linux desktops, the macOS Keychain, the Windows Credential Locker)
the password goes there, and the file `signin-LOGIN.toml` in the user's config folder says
only where to connect, as whom, and that the keyring holds the rest. Without a keyring the
file holds the password too. Either way the file is created owner-only (0600) in a folder
only its owner may enter (0700), whatever the umask.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

KEYRING_SERVICE = "platen-client"


@dataclass(frozen=True)
class Stored:
    login: str
    desktop: str
    url: str  # the broker, without credentials
    username: str  # the desktop's broker user, `<login>~<desktop>`
    password: str = field(repr=False)


def default_desktop() -> str:
    """This desktop's id: its host name, in the characters a desktop id may hold."""
    name = re.sub(r"[^a-z0-9.-]+", "-", socket.gethostname().lower()).strip(".-")
    return name[:63] or "desktop"


def path_for(login: str, config_dir: Path) -> Path:
    return config_dir / f"signin-{login}.toml"


def _keyring():
    """The keyring module if one is installed with a backend that can keep a secret."""
    try:
        import keyring  # optional: a desktop without it keeps the file (0600)
        from keyring.backends import fail
    except Exception:
        return None
    try:
        if isinstance(keyring.get_keyring(), fail.Keyring):
            return None
    except Exception:
        return None
    return keyring


def write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        path.parent.chmod(0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        if hasattr(os, "fchmod"):  # POSIX; on Windows the profile folder is private already
            os.fchmod(fd, 0o600)  # an older file with wider rights is narrowed too
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def save(stored: Stored, config_dir: Path, *, use_keyring: bool = True) -> str:
    """Keep `stored`; says where the password went ("the keyring" or the file's path)."""
    lines = {
        "url": stored.url,
        "user": stored.username,
        "desktop": stored.desktop,
    }
    keyring = _keyring() if use_keyring else None
    where = "the keyring"
    if keyring is not None:
        try:
            keyring.set_password(KEYRING_SERVICE, stored.login, stored.password)
            lines["store"] = "keyring"
        except Exception:  # a locked or broken keyring: the private file instead
            keyring = None
    if keyring is None:
        lines["store"] = "file"
        lines["password"] = stored.password
        where = str(path_for(stored.login, config_dir))
    # JSON strings are TOML basic strings: this quotes whatever the values hold.
    text = "# Platen: this desktop's own sign-in (platen-client --sign-in). Keep it private.\n"
    text += "".join(f"{k} = {json.dumps(v)}\n" for k, v in lines.items())
    write_private(path_for(stored.login, config_dir), text)
    return where


def load(login: str, config_dir: Path) -> Stored | None:
    path = path_for(login, config_dir)
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return None
    password = data.get("password")
    if data.get("store") == "keyring":
        keyring = _keyring()
        try:
            password = keyring.get_password(KEYRING_SERVICE, login) if keyring else None
        except Exception:
            password = None
    if not password or not all(isinstance(data.get(k), str) for k in ("url", "user", "desktop")):
        return None
    return Stored(login, data["desktop"], data["url"], data["user"], password)


def forget(login: str, config_dir: Path) -> None:
    """After the server signed this desktop out: the credential is dead, drop it."""
    with contextlib.suppress(FileNotFoundError):
        path_for(login, config_dir).unlink()
    keyring = _keyring()
    if keyring is not None:
        with contextlib.suppress(Exception):
            keyring.delete_password(KEYRING_SERVICE, login)
