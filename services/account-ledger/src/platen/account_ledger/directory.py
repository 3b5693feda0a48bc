"""Where the site's users come from: an LDAP server (OpenLDAP, Active Directory) or the
host's own users and groups (NSS: what `getent passwd` / `getent group` return).

The adapter only reads, and never inside a database transaction: a sync lists everyone
before its transaction opens, and a job from a user the ledger does not know yet looks
them up before its own (`outside_transaction`). Lookups are cached for a short time, so
a stream of jobs costs the directory one query per user now and then, and a directory
that is away costs known users nothing (their jobs never need it).

Settings (environment of the account-ledger service):
- `PLATEN_DIRECTORY`: `ldap`, `nss`, or unset (no directory: users are made by hand).
- LDAP: `PLATEN_LDAP_URL` (`ldaps://…`, or `ldap://…` with StartTLS, which is then
  required), `PLATEN_LDAP_CA_FILE`, `PLATEN_LDAP_BIND_DN` and `PLATEN_LDAP_PASSWORD_FILE`
  (a file, never the password itself), `PLATEN_LDAP_USER_BASE`, `PLATEN_LDAP_USER_FILTER`
  (`(objectClass=posixAccount)`), `PLATEN_LDAP_LOGIN_ATTRIBUTE` (`uid`;
  `sAMAccountName` for Active Directory), `PLATEN_LDAP_GROUP_BASE`,
  `PLATEN_LDAP_GROUP_FILTER` (`(objectClass=posixGroup)`), and how a group names its
  members: `memberUid` (logins) or `member` (DNs, as Active Directory does).
- NSS: `PLATEN_NSS_MIN_UID` (1000): system accounts below it are not users.
"""

from __future__ import annotations

import asyncio
import grp
import os
import pwd
import time
from collections.abc import Iterable
from dataclasses import dataclass

import structlog

from platen.account_ledger.domain import DirectoryUser
from platen.directory.ldap import BindRefused, DirectoryUnavailable, LdapSettings, connect
from platen.events.base import is_valid_login

log = structlog.get_logger(__name__)


def _clean(logins: Iterable[str]) -> list[str]:
    return sorted({login for login in logins if is_valid_login(login)})


class NssDirectory:
    """The host's users (uid at or above `min_uid`, not `nobody`) and their groups."""

    source = "nss"

    def __init__(self, min_uid: int = 1000) -> None:
        self.min_uid = min_uid

    def _list(self) -> list[DirectoryUser]:
        members: dict[str, set[str]] = {}
        gid_names = {}
        for g in grp.getgrall():
            gid_names[g.gr_gid] = g.gr_name
            for m in g.gr_mem:
                members.setdefault(m, set()).add(g.gr_name)
        users = []
        for p in pwd.getpwall():
            if p.pw_uid < self.min_uid or p.pw_name == "nobody" or not is_valid_login(p.pw_name):
                continue
            groups = set(members.get(p.pw_name, set()))
            if p.pw_gid in gid_names:
                groups.add(gid_names[p.pw_gid])  # the primary group
            full_name = p.pw_gecos.split(",", 1)[0] or None
            # Logins are kept in lower case (they match without regard to case).
            login = p.pw_name.lower()
            users.append(DirectoryUser(login, full_name, None, None, tuple(sorted(groups))))
        return users

    async def users(self) -> list[DirectoryUser]:
        return await asyncio.to_thread(self._list)

    def _one(self, login: str) -> DirectoryUser | None:
        try:
            p = pwd.getpwnam(login)
        except KeyError:
            return None
        if p.pw_uid < self.min_uid or login == "nobody":
            return None
        groups = set()
        for gid in os.getgrouplist(login, p.pw_gid):  # asks NSS for this user only
            try:
                groups.add(grp.getgrgid(gid).gr_name)
            except KeyError:
                continue
        full_name = p.pw_gecos.split(",", 1)[0] or None
        return DirectoryUser(login, full_name, None, None, tuple(sorted(groups)))

    async def user(self, login: str) -> DirectoryUser | None:
        if not is_valid_login(login):
            return None
        return await asyncio.to_thread(self._one, login)


class LdapDirectory:
    """Users and groups from LDAP, over LDAPS or StartTLS only (a bind password never
    crosses the network in clear), the server's certificate checked."""

    def __init__(self, settings: LdapSettings) -> None:
        self.settings = settings
        self.source = settings.url

    def _connection(self):
        try:
            return connect(self.settings)
        except BindRefused as exc:  # the reader's own bind refused: nothing can be read
            raise DirectoryUnavailable(f"{self.settings.url}: {exc}") from None

    def _search(self, conn, base: str, flt: str, attributes: list[str]) -> list:
        import ldap3

        entries = conn.extend.standard.paged_search(
            base, flt, ldap3.SUBTREE, attributes=attributes, paged_size=500, generator=False
        )
        return [e for e in entries if e.get("type") == "searchResEntry"]

    def _list(self, login: str | None = None) -> list[DirectoryUser]:
        from ldap3.utils.conv import escape_filter_chars

        s = self.settings
        conn = self._connection()
        try:
            flt = s.user_filter
            if login is not None:
                flt = f"(&{flt}({s.login_attribute}={escape_filter_chars(login)}))"
            people = self._search(
                conn,
                s.user_base,
                flt,
                [s.login_attribute, "cn", "displayName", "mail", "employeeNumber"],
            )
            group_filter = s.group_filter if login is None else self._groups_of(people)
            groups = (
                self._search(conn, s.group_base, group_filter, ["cn", s.member_attribute])
                if group_filter
                else []
            )
        except DirectoryUnavailable:
            raise
        except Exception as exc:
            raise DirectoryUnavailable(f"{s.url}: {type(exc).__name__}: {exc}") from None
        finally:
            conn.unbind()
        by_dn, users = {}, {}
        for e in people:
            a = e["attributes"]
            login_value = _one(a.get(s.login_attribute))
            if not login_value or not is_valid_login(login_value):
                continue
            login_value = login_value.lower()  # logins match without regard to case
            users[login_value] = {
                "full_name": _one(a.get("displayName")) or _one(a.get("cn")),
                "email": _one(a.get("mail")),
                "card_id": _one(a.get("employeeNumber")),
                "groups": set(),
            }
            by_dn[e["dn"].lower()] = login_value
        for g in groups:
            name = _one(g["attributes"].get("cn"))
            for member in g["attributes"].get(s.member_attribute) or []:
                key = member.lower()
                who = by_dn.get(key) if s.member_attribute == "member" else key
                if name and who in users:
                    users[who]["groups"].add(name)
        return [
            DirectoryUser(
                login,
                u["full_name"],
                u["email"],
                u["card_id"],
                tuple(sorted(u["groups"])),
            )
            for login, u in sorted(users.items())
        ]

    def _groups_of(self, people: list) -> str | None:
        """The group filter narrowed to the groups naming these people, so a lookup of one
        user reads their groups, not every group of the site (None: nobody to look for)."""
        from ldap3.utils.conv import escape_filter_chars

        s = self.settings
        names = set()
        for e in people:
            if s.member_attribute == "member":  # members named by DN (Active Directory)
                names.add(e["dn"])
            elif login_value := _one(e["attributes"].get(s.login_attribute)):
                # As written in the person's entry, and in the lower case logins are kept
                # in: `memberUid` compares case-sensitively, the listing above does not.
                names.update((login_value, login_value.lower()))
        if not names:
            return None
        wanted = "".join(f"({s.member_attribute}={escape_filter_chars(n)})" for n in sorted(names))
        return f"(&{s.group_filter}(|{wanted}))"

    async def users(self) -> list[DirectoryUser]:
        return await asyncio.to_thread(self._list)

    async def user(self, login: str) -> DirectoryUser | None:
        found = await asyncio.to_thread(self._list, login)
        return found[0] if found else None


def _one(value) -> str | None:
    if isinstance(value, list):
        value = value[0] if value else None
    return str(value) if value not in (None, "") else None


@dataclass(frozen=True)
class Lookup:
    """What a job's user lookup found: the user (None: not in the directory), or why the
    directory could not say."""

    user: DirectoryUser | None
    unavailable: str | None = None


class Directory:
    """The directory the ledger reads, with a short cache of single-user lookups."""

    def __init__(self, source, found_ttl: float = 300.0, missing_ttl: float = 30.0) -> None:
        self.adapter = source
        self.source = source.source
        self.found_ttl, self.missing_ttl = found_ttl, missing_ttl
        self._cache: dict[str, tuple[float, DirectoryUser | None]] = {}

    async def users(self) -> list[DirectoryUser]:
        return await self.adapter.users()

    async def lookup(self, login: str) -> Lookup:
        now = time.monotonic()
        cached = self._cache.get(login)
        if cached is not None and cached[0] > now:
            return Lookup(cached[1])
        try:
            user = await self.adapter.user(login)
        except DirectoryUnavailable as exc:
            log.warning("directory unavailable", error=str(exc))
            return Lookup(None, str(exc))
        if len(self._cache) > 100_000:
            self._cache.clear()  # bounded: a flood of made-up logins cannot grow it
        ttl = self.found_ttl if user else self.missing_ttl
        self._cache[login] = (now + ttl, user)
        return Lookup(user)


def from_env(env=os.environ) -> Directory | None:
    kind = env.get("PLATEN_DIRECTORY", "").strip().lower()
    if kind in ("", "none"):
        return None
    if kind == "nss":
        return Directory(NssDirectory(int(env.get("PLATEN_NSS_MIN_UID", "1000"))))
    if kind == "ldap":
        return Directory(LdapDirectory(LdapSettings.from_env(env)))
    raise ValueError(f"PLATEN_DIRECTORY={kind!r}: use ldap, nss or none")
