"""Where the broker is, for the programs people run (platenctl, platen-client).

$PLATEN_AMQP_URL when set, else the `make run` system of the checkout this is run from
(its `run/platen.env`), else a broker on this machine.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/"
ENV_FILE = Path("run") / "platen.env"


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip()
    return values


def find_env_file(start: Path | None = None) -> Path | None:
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / ENV_FILE
        if candidate.is_file():
            return candidate
    return None


def amqp_url() -> str:
    if url := os.environ.get("PLATEN_AMQP_URL"):
        return url
    env_file = find_env_file()
    if env_file and (url := read_env_file(env_file).get("PLATEN_AMQP_URL")):
        return url
    return DEFAULT_URL


def signed_in_as(url: str) -> str | None:
    """The broker user an AMQP URL signs in as: the one it names, the client library's
    default (guest) when it names none, None with certificate sign-in (the broker takes
    the name from the certificate, which the client does not know)."""
    parts = urlsplit(url)
    if parts.username:
        return unquote(parts.username)
    return None if "auth=external" in parts.query.lower() else "guest"
