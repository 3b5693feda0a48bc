"""`platen-client --sign-in`: sign this desktop in once with the user's directory password.

The password is asked without echo (a terminal's `getpass`, a Tk dialog in GUI mode, or
one line of stdin with `--password-stdin` for scripts), posted over HTTPS to the
notification service's sign-in endpoint (`sign_in_url`; the server's certificate checked
against the system's CAs or `sign_in_cafile`), and forgotten. What comes back is this
desktop's own broker credential, kept by `credentials` (the keyring, or an owner-only
file); later starts use it without asking.
"""

from __future__ import annotations

import json
import ssl
import sys
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import parse_qs

from pydantic import ValidationError

from platen.client import credentials
from platen.events.discovery import with_login
from platen.events.identities import SignInGranted

PATH = "/sign-in"


class SignInError(Exception):
    """Nothing was issued; the message says why, for the user."""


def cafile_of(amqp_url: str) -> str | None:
    """The CA file named in a broker URL's query (`?cafile=`), which usually signed the
    site's other certificates too."""
    query = amqp_url.split("?", 1)[1] if "?" in amqp_url else ""
    return (parse_qs(query).get("cafile") or [None])[0]


def request_credential(
    sign_in_url: str,
    login: str,
    password: str,
    desktop: str,
    *,
    cafile: str | None = None,
    timeout: float = 30,
) -> SignInGranted:
    url = sign_in_url.rstrip("/")
    if not url.endswith(PATH):
        url += PATH
    if not url.startswith("https://"):
        raise SignInError(f"the sign-in address must be https://, not {sign_in_url[:40]!r}")
    # Written by hand: pydantic would write a SecretStr as `**********`.
    body = json.dumps({"login": login, "password": password, "desktop": desktop}).encode()
    context = ssl.create_default_context(cafile=cafile)
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, context=context, timeout=timeout) as answer:
            data = json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        try:
            error = json.loads(exc.read()).get("error")
        except (ValueError, AttributeError, OSError):
            error = None
        raise SignInError(error or f"the server answered {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SignInError(f"cannot reach {url}: {reason}") from None
    try:
        return SignInGranted.model_validate(data)
    except ValidationError:
        raise SignInError(f"{url} answered something that is not a credential") from None


def ask_password(login: str, desktop: str, mode: str, from_stdin: bool) -> str | None:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if mode == "gui":
        import tkinter

        from platen.client.tksignin import ask_password as ask_tk  # only with windows

        try:
            return ask_tk(login, desktop)
        except tkinter.TclError:  # no display (a terminal over ssh): ask there instead
            pass
    import getpass

    return getpass.getpass(f"Directory password for {login} (desktop {desktop}): ")


def sign_in(options, config_dir: Path) -> str:
    """Sign in as `options.login` from `options.desktop`; returns what to tell the user.
    Raises SignInError."""
    if not options.sign_in_url:
        raise SignInError("no sign-in address: give --sign-in-url or sign_in_url in the config")
    password = ask_password(options.login, options.desktop, options.mode, options.password_stdin)
    if not password:
        raise SignInError("no password given: nothing done")
    cafile = options.sign_in_cafile or cafile_of(options.url)
    granted = request_credential(
        options.sign_in_url, options.login, password, options.desktop, cafile=cafile
    )
    del password  # not kept: only the issued credential is
    # The broker: as the site announces it for desktops, else as this client knows it.
    url = granted.url or with_login(options.url, "", "")
    where = credentials.save(
        credentials.Stored(
            granted.login,
            granted.desktop,
            url,
            granted.username,
            granted.password.get_secret_value(),
        ),
        config_dir,
    )
    return f"signed in as {granted.login} on desktop {granted.desktop}; credential kept in {where}"
