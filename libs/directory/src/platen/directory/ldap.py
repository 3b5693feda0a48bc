"""The site's LDAP directory, read-only, over TLS only: its settings, a connection, and the
check of a user's own password.

Two services ask it: the ledger lists users and groups (`platen.account_ledger.directory`),
and the notification service checks a password when a desktop signs in
(`platen.notification.signin`). Neither imports the other, so what both need lives here.

Settings (environment): `PLATEN_LDAP_URL` (`ldaps://…`, or `ldap://…` with StartTLS, which
is then required), `PLATEN_LDAP_CA_FILE`, `PLATEN_LDAP_BIND_DN` and
`PLATEN_LDAP_PASSWORD_FILE` (a file, never the password itself), `PLATEN_LDAP_USER_BASE`,
`PLATEN_LDAP_USER_FILTER`, `PLATEN_LDAP_LOGIN_ATTRIBUTE`, `PLATEN_LDAP_GROUP_BASE`,
`PLATEN_LDAP_GROUP_FILTER`, `PLATEN_LDAP_MEMBER_ATTRIBUTE`.
"""

from __future__ import annotations

import enum
import os
import ssl
from dataclasses import dataclass

from platen.events.base import is_valid_login


class DirectoryUnavailable(Exception):
    """The directory could not be asked (down, refused our credentials, timed out)."""


class BindRefused(Exception):
    """The directory refused these credentials (a wrong password, an unknown DN)."""


@dataclass(frozen=True)
class LdapSettings:
    url: str
    bind_dn: str | None
    password_file: str | None  # read at each bind: the password is never in the environment
    user_base: str
    group_base: str
    ca_file: str | None = None
    user_filter: str = "(objectClass=posixAccount)"
    group_filter: str = "(objectClass=posixGroup)"
    login_attribute: str = "uid"
    member_attribute: str = "memberUid"  # or "member" (DNs)
    timeout: int = 10  # seconds (ldap3 wants a whole number)

    @classmethod
    def from_env(cls, env=os.environ) -> LdapSettings:
        user_base = env["PLATEN_LDAP_USER_BASE"]
        return cls(
            url=env["PLATEN_LDAP_URL"],
            bind_dn=env.get("PLATEN_LDAP_BIND_DN"),
            password_file=env.get("PLATEN_LDAP_PASSWORD_FILE"),
            user_base=user_base,
            group_base=env.get("PLATEN_LDAP_GROUP_BASE", user_base),
            ca_file=env.get("PLATEN_LDAP_CA_FILE"),
            user_filter=env.get("PLATEN_LDAP_USER_FILTER", cls.user_filter),
            group_filter=env.get("PLATEN_LDAP_GROUP_FILTER", cls.group_filter),
            login_attribute=env.get("PLATEN_LDAP_LOGIN_ATTRIBUTE", cls.login_attribute),
            member_attribute=env.get("PLATEN_LDAP_MEMBER_ATTRIBUTE", cls.member_attribute),
        )


def connect(settings: LdapSettings, *, user: str | None = None, password: str | None = None):
    """A bound, read-only ldap3 connection: as the site's reader (`bind_dn`, its password
    read from `password_file` now), or as `user` with `password`. StartTLS is done before the
    bind on `ldap://`, so no password crosses the network in clear; the server's
    certificate is checked against `ca_file`. A refused bind raises `BindRefused`; anything
    else that stops it, `DirectoryUnavailable`."""
    import ldap3  # only a site with LDAP pays for its import

    s = settings
    tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=s.ca_file)
    ldaps = s.url.startswith("ldaps://")
    # No server information read at open: nothing may be outstanding when StartTLS is
    # asked for (slapd refuses it then), and the schema is not needed.
    server = ldap3.Server(
        s.url, use_ssl=ldaps, tls=tls, connect_timeout=s.timeout, get_info=ldap3.NONE
    )
    if user is None:
        user = s.bind_dn
        if s.password_file:
            with open(s.password_file, encoding="utf-8") as f:
                password = f.read().strip()
    try:
        return ldap3.Connection(
            server,
            user=user,
            password=password,
            receive_timeout=s.timeout,
            raise_exceptions=True,
            read_only=True,
            auto_bind=ldap3.AUTO_BIND_NO_TLS if ldaps else ldap3.AUTO_BIND_TLS_BEFORE_BIND,
        )
    except (
        ldap3.core.exceptions.LDAPBindError,
        ldap3.core.exceptions.LDAPInvalidCredentialsResult,
    ) as exc:
        raise BindRefused(f"{type(exc).__name__}: {exc}") from None
    except Exception as exc:
        # The message names the server, never a password (ldap3 does not put it there).
        raise DirectoryUnavailable(f"{s.url}: {type(exc).__name__}: {exc}") from None


class Verdict(enum.Enum):
    ACCEPTED = "accepted"
    UNKNOWN_USER = "unknown user"
    WRONG_PASSWORD = "wrong password"


def verify_password(settings: LdapSettings, login: str, password: str) -> Verdict:
    """Whether `password` is `login`'s own in the directory: the reader finds the user's
    entry (one only, by the login attribute within the user filter), then a simple bind as
    that entry with `password` decides. Blocking (run it in a thread). Raises
    `DirectoryUnavailable` when the directory cannot say."""
    import ldap3
    from ldap3.utils.conv import escape_filter_chars

    # An empty password would be an "unauthenticated bind", which LDAP servers accept
    # for any DN (RFC 4513 5.1.2): never take it as proof of anything.
    if not is_valid_login(login):
        return Verdict.UNKNOWN_USER
    if not password:
        return Verdict.WRONG_PASSWORD
    s = settings
    try:
        reader = connect(s)
    except BindRefused as exc:
        raise DirectoryUnavailable(f"{s.url}: the reader's bind was refused: {exc}") from None
    try:
        flt = f"(&{s.user_filter}({s.login_attribute}={escape_filter_chars(login)}))"
        reader.search(s.user_base, flt, ldap3.SUBTREE, attributes=[], size_limit=2)
        found = [e["dn"] for e in reader.response if e.get("type") == "searchResEntry"]
    except Exception as exc:
        raise DirectoryUnavailable(f"{s.url}: {type(exc).__name__}: {exc}") from None
    finally:
        reader.unbind()
    if len(found) != 1:  # none, or a login the directory does not tell apart
        return Verdict.UNKNOWN_USER
    try:
        own = connect(s, user=found[0], password=password)
    except BindRefused:
        return Verdict.WRONG_PASSWORD
    own.unbind()
    return Verdict.ACCEPTED
