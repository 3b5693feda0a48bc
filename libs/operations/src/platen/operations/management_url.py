"""The broker's management API URL, which may name every node of a cluster.

`http://user:password@rabbit1:15672,rabbit2:15672` names two nodes with one login, the way
an AMQP URL names them (docs/admin-guide.md, "A cluster"); `urllib.parse` cannot take such
a URL apart (its port is `15672,rabbit2:15672`). Standard library only: the containers'
health check imports it every few seconds.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

# The login is everything before the authority's last `@`: a password written with a raw
# `@` (`p@ss`) still splits where the hosts begin.
_URL = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?:(?P<login>[^/?#]*)@)?(?P<hosts>[^@/?#]*)(?P<path>.*)"
)


def split_credentials(url: str) -> tuple[str, tuple[str, str] | None]:
    """`http://user:pw@host:15672` -> (`http://host:15672`, (user, pw)), every node kept."""
    found = _URL.fullmatch(url)
    if found is None or found["login"] is None:
        return url, None
    user, _, password = found["login"].partition(":")
    return found["scheme"] + found["hosts"] + found["path"], (unquote(user), unquote(password))


def nodes(url: str) -> list[str]:
    """Each node the URL names, as a URL of its own without credentials:
    `http://u:p@rabbit1:15672,rabbit2:15672` -> [`http://rabbit1:15672`, `http://rabbit2:15672`]."""
    found = _URL.fullmatch(url)
    hosts = [h for h in (found["hosts"] if found else "").split(",") if h]
    if found is None or not hosts:
        raise ValueError("a management URL names at least one node: http://HOST:15672")
    path = found["path"].rstrip("/")
    return [f"{found['scheme']}{host}{path}" for host in hosts]
