"""A real OpenLDAP server (`slapd`) for the directory tests, run from a private folder on
a free port, TLS required (StartTLS with a private CA), like RabbitMQ and PostgreSQL are
(platen.localstack).

The directory holds people under `ou=people` (posixAccount + inetOrgPerson) and groups
under `ou=groups` (posixGroup, members by login). Platen binds as a read-only user.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from platen.localstack import lifeline
from platen.localstack.servers import InfraError, free_port, wait_for_port
from platen.localstack.tls import make_test_ca

SUFFIX = "dc=platen,dc=test"
ADMIN_DN = f"cn=admin,{SUFFIX}"
READER_DN = f"cn=platen-reader,{SUFFIX}"
PEOPLE = f"ou=people,{SUFFIX}"
GROUPS = f"ou=groups,{SUFFIX}"
SCHEMAS = ["core", "cosine", "nis", "inetorgperson"]


@dataclass(frozen=True)
class Person:
    login: str
    full_name: str
    uid_number: int
    email: str | None = None
    card_id: str | None = None
    # Their own password (stored salted-hashed, SSHA), for the sign-in tests' binds.
    password: str | None = None


class Slapd:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self.admin_password = secrets.token_urlsafe(16)
        self.reader_password = secrets.token_urlsafe(16)
        self.tls = make_test_ca(root / "tls")

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    def start(self) -> Slapd:
        slapd = shutil.which("slapd") or "/usr/sbin/slapd"
        if not os.path.exists(slapd):
            raise InfraError("slapd is not installed (apt-get install slapd ldap-utils)")
        data = self.root / "data"
        data.mkdir(parents=True, exist_ok=True)
        conf = self.root / "slapd.conf"
        includes = "".join(f"include /etc/ldap/schema/{s}.schema\n" for s in SCHEMAS)
        conf.write_text(
            f"""{includes}
pidfile {self.root}/slapd.pid
argsfile {self.root}/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
TLSCACertificateFile {self.tls.ca_cert}
TLSCertificateFile {self.tls.server_cert}
TLSCertificateKeyFile {self.tls.server_key}
# Nothing but the StartTLS request itself in clear: binds and searches need TLS.
security ssf=128
database mdb
maxsize 104857600
suffix "{SUFFIX}"
rootdn "{ADMIN_DN}"
rootpw {_ssha(self.admin_password)}
directory {data}
access to attrs=userPassword by anonymous auth by * none
access to * by dn.exact="{READER_DN}" read by * none
"""
        )
        self.port = free_port()
        log = open(self.root / "slapd.log", "w")  # noqa: SIM115 - the process keeps it
        self.proc = subprocess.Popen(
            [slapd, "-d", "0", "-f", str(conf), "-h", self.url + "/"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        lifeline.watch(self.proc.pid)
        wait_for_port(self.port, 20, self.proc)
        self.add(
            f"""dn: {SUFFIX}
objectClass: dcObject
objectClass: organization
o: Platen test
dc: platen

dn: {READER_DN}
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: platen-reader
userPassword: {_ssha(self.reader_password)}

dn: {PEOPLE}
objectClass: organizationalUnit
ou: people

dn: {GROUPS}
objectClass: organizationalUnit
ou: groups
"""
        )
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def _tool(self, tool: str, ldif: str, *extra: str) -> None:
        env = {**os.environ, "LDAPTLS_CACERT": str(self.tls.ca_cert)}
        out = subprocess.run(
            [tool, "-x", "-ZZ", "-H", self.url, "-D", ADMIN_DN, "-w", self.admin_password, *extra],
            input=ldif,
            capture_output=True,
            text=True,
            env=env,
        )
        if out.returncode != 0:
            raise InfraError(f"{tool} failed: {out.stderr.strip()}")

    def add(self, ldif: str) -> None:
        self._tool("ldapadd", ldif)

    def modify(self, ldif: str) -> None:
        self._tool("ldapmodify", ldif)

    def delete(self, dn: str) -> None:
        self._tool("ldapdelete", "", dn)

    def add_person(self, p: Person, groups: list[str] = ()) -> None:
        hashed = _ssha(p.password) if p.password else None
        extra = "".join(
            f"{k}: {v}\n"
            for k, v in (("mail", p.email), ("employeeNumber", p.card_id), ("userPassword", hashed))
            if v
        )
        first, _, last = p.full_name.partition(" ")
        self.add(
            f"""dn: uid={p.login},{PEOPLE}
objectClass: inetOrgPerson
objectClass: posixAccount
uid: {p.login}
cn: {p.full_name}
sn: {last or first}
displayName: {p.full_name}
uidNumber: {p.uid_number}
gidNumber: {p.uid_number}
homeDirectory: /home/{p.login}
{extra}"""
        )
        for g in groups:
            self.add_member(g, p.login)

    def add_group(self, name: str, gid: int) -> None:
        self.add(
            f"""dn: cn={name},{GROUPS}
objectClass: posixGroup
cn: {name}
gidNumber: {gid}
"""
        )

    def add_member(self, group: str, login: str) -> None:
        self.modify(
            f"""dn: cn={group},{GROUPS}
changetype: modify
add: memberUid
memberUid: {login}
"""
        )

    def remove_person(self, login: str) -> None:
        self.delete(f"uid={login},{PEOPLE}")

    def ledger_env(self, password_file: Path) -> dict[str, str]:
        """The account-ledger's settings to read this directory as its read-only user."""
        password_file.write_text(self.reader_password)
        password_file.chmod(0o600)
        return {
            "PLATEN_DIRECTORY": "ldap",
            "PLATEN_LDAP_URL": self.url,
            "PLATEN_LDAP_CA_FILE": str(self.tls.ca_cert),
            "PLATEN_LDAP_BIND_DN": READER_DN,
            "PLATEN_LDAP_PASSWORD_FILE": str(password_file),
            "PLATEN_LDAP_USER_BASE": PEOPLE,
            "PLATEN_LDAP_GROUP_BASE": GROUPS,
        }


@contextlib.contextmanager
def running_slapd(root: Path) -> Iterator[Slapd]:
    """A started `Slapd` in `root`, stopped on the way out (a fixture's body)."""
    server = Slapd(root).start()
    try:
        yield server
    finally:
        server.stop()


def _ssha(password: str) -> str:
    out = subprocess.run(
        ["slappasswd", "-h", "{SSHA}", "-s", password], capture_output=True, text=True, check=True
    )
    return out.stdout.strip()
