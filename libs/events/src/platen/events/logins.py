"""What a login is: the rule every party applies (the pydantic `base.Login` type, the
desktop client without pydantic, platenctl, the services). No pydantic here."""

from __future__ import annotations

import re
from collections.abc import Iterable

# Logins appear in routing keys and queue names (`user.<login>.*`, `desktop.<login>`),
# so the characters AMQP topic matching gives meaning to (* #) are not allowed. A dot is
# (`first.last`, common in Active Directory): a routing key carries the login as one word,
# its dots written %2E (`routing.login_word`), and a login holds no %.
LOGIN_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,63}$"
# A user's desktop signs in as a broker user named after their login, so a login may not
# be the name of one of Platen's own broker identities (`platen-admin`, a service's
# `platen-job-capture`, a print server's `platen-print-server.NAME`, each perhaps behind an
# installation's prefix) or the broker's `guest`: making that user would hand a desktop's
# permissions to, and take the place of, the identity.
_RESERVED = re.compile(r"(^|[-_.@])platen-|^guest$", re.IGNORECASE)


def is_reserved_login(name: str) -> bool:
    """Whether `name` is, or could be, one of the broker identities no user may take."""
    return _RESERVED.search(name) is not None


def is_valid_login(login: str) -> bool:
    """Whether `login` is one (in any case: the `Login` type keeps it in lower case)."""
    return re.fullmatch(LOGIN_PATTERN, login) is not None and not is_reserved_login(login)


def canonical_login(name: str, domains: Iterable[str] = ()) -> str | None:
    """The Platen login of a user name as a print server or a directory gives it, or None
    when it maps to no valid login. `DOMAIN\\name` and `name@REALM` lose a domain or realm
    that is one of the site's `domains` (any case; `*` for every domain); a name keeps an
    unlisted `@realm` as part of the login, and an unlisted `DOMAIN\\` makes it invalid
    (no login holds a backslash). Lower case, as every login is kept."""
    wanted = {d.lower() for d in domains}
    if "\\" in name:
        domain, _, rest = name.partition("\\")
        if "*" in wanted or domain.lower() in wanted:
            name = rest
    elif "@" in name:
        rest, _, realm = name.rpartition("@")
        if "*" in wanted or realm.lower() in wanted:
            name = rest
    return name.lower() if is_valid_login(name) else None
