"""The LDAP directory adapter against a real OpenLDAP `slapd` (TLS required): users,
their names, emails, cards and groups; one user at a time; and each way it can fail,
said clearly and never as "nobody is there"."""

from __future__ import annotations

import pytest

from platen.account_ledger.directory import Directory, LdapDirectory, LdapSettings, from_env
from platen.account_ledger.domain import DirectoryUser
from platen.testing.ldap import GROUPS, PEOPLE, Person, Slapd

pytestmark = pytest.mark.integration  # a real server, started by the test itself


@pytest.fixture
def slapd(tmp_path):
    server = Slapd(tmp_path / "slapd").start()
    try:
        server.add_group("staff", 5000)
        server.add_group("lab", 5001)
        server.add_person(Person("ann", "Ann Able", 10001, "ann@example.org", "C-1"), ["staff"])
        server.add_person(Person("bob", "Bob Baker", 10002), ["staff", "lab"])
        server.add_person(Person("cat", "Cat Cole", 10003))
        # As Active Directory sites name people: a dot, and capitals (logins match
        # without regard to case, and are kept in lower case).
        server.add_person(Person("Dee.Dot", "Dee Dot", 10004), ["lab"])
        yield server
    finally:
        server.stop()


def directory(slapd: Slapd, tmp_path, **changes) -> Directory:
    env = {**slapd.ledger_env(tmp_path / "reader-password"), **changes}
    return from_env(env)


async def test_users_and_their_groups_are_read_over_starttls(slapd, tmp_path):
    users = await directory(slapd, tmp_path).users()
    assert users == [
        DirectoryUser("ann", "Ann Able", "ann@example.org", "C-1", ("staff",)),
        DirectoryUser("bob", "Bob Baker", None, None, ("lab", "staff")),
        DirectoryUser("cat", "Cat Cole", None, None, ()),
        DirectoryUser("dee.dot", "Dee Dot", None, None, ("lab",)),
    ]


async def test_one_user_is_looked_up_and_cached_for_a_while(slapd, tmp_path):
    site = directory(slapd, tmp_path)
    found = await site.lookup("bob")
    assert found.user is not None and found.user.groups == ("lab", "staff")
    dotted = await site.lookup("dee.dot")
    assert dotted.user is not None and dotted.user.groups == ("lab",)
    missing = await site.lookup("dan")
    assert (missing.user, missing.unavailable) == (None, None)
    slapd.stop()  # answered from the cache while the directory is away
    assert (await site.lookup("bob")).user == found.user


async def test_a_filter_character_in_a_login_cannot_widen_the_search(slapd, tmp_path):
    site = directory(slapd, tmp_path)
    assert (await site.lookup("*")).user is None  # not a login: never sent
    adapter = site.adapter
    assert isinstance(adapter, LdapDirectory)
    assert await adapter.user("a*") == None  # noqa: E711 - escaped, so matches nobody


async def test_one_user_is_looked_up_without_reading_every_group(slapd, tmp_path, monkeypatch):
    """A site has thousands of groups; a job from a user the ledger does not know yet must
    not read them all. The lookup asks the directory for the groups naming that user."""
    for n in range(30):
        slapd.add_group(f"course{n}", 6000 + n)
    slapd.add_member("course7", "bob")
    slapd.add_member("course9", "Dee.Dot")
    adapter = LdapDirectory(LdapSettings.from_env(slapd.ledger_env(tmp_path / "pw")))
    read: list[str] = []
    search = LdapDirectory._search

    def counted(self, conn, base, flt, attributes):
        entries = search(self, conn, base, flt, attributes)
        read.extend(e["dn"] for e in entries if "groups" in e["dn"])
        return entries

    monkeypatch.setattr(LdapDirectory, "_search", counted)
    bob = await adapter.user("bob")
    assert bob is not None and bob.groups == ("course7", "lab", "staff")
    assert len(read) == 3
    read.clear()
    dee = await adapter.user("dee.dot")  # memberUid as the entry writes the login
    assert dee is not None and dee.groups == ("course9", "lab")
    assert len(read) == 2
    read.clear()
    assert await adapter.user("dan") is None  # nobody: no group is read at all
    assert read == []
    everyone = {u.login: u.groups for u in await adapter.users()}
    assert everyone["bob"] == ("course7", "lab", "staff") and len(read) == 32


async def test_groups_that_name_their_members_by_dn(slapd, tmp_path):
    """As Active Directory does (`member: <the person's DN>`): listed and looked up alike."""
    slapd.add(
        f"""dn: cn=printing,{GROUPS}
objectClass: groupOfNames
cn: printing
member: uid=ann,{PEOPLE}
member: uid=Dee.Dot,{PEOPLE}
"""
    )
    env = {
        **slapd.ledger_env(tmp_path / "pw"),
        "PLATEN_LDAP_GROUP_FILTER": "(objectClass=groupOfNames)",
        "PLATEN_LDAP_MEMBER_ATTRIBUTE": "member",
    }
    adapter = LdapDirectory(LdapSettings.from_env(env))
    everyone = {u.login: u.groups for u in await adapter.users()}
    assert everyone == {"ann": ("printing",), "bob": (), "cat": (), "dee.dot": ("printing",)}
    for login, groups in everyone.items():
        found = await adapter.user(login)
        assert found is not None and found.groups == groups


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (
            {"PLATEN_LDAP_CA_FILE": "/etc/ssl/certs/ca-certificates.crt"},
            "CERTIFICATE_VERIFY_FAILED",
        ),
        ({"PLATEN_LDAP_BIND_DN": "cn=nobody,dc=platen,dc=test"}, "invalidCredentials"),
        ({"PLATEN_LDAP_URL": "ldap://127.0.0.1:9"}, "LDAPSocketOpenError"),
    ],
)
async def test_a_directory_that_cannot_be_asked_says_why(slapd, tmp_path, change, why):
    site = directory(slapd, tmp_path, **change)
    lookup = await site.lookup("ann")
    assert lookup.user is None and why in (lookup.unavailable or "")
    with pytest.raises(Exception, match=why):
        await site.users()


async def test_the_password_is_read_from_its_file_and_never_kept_in_the_settings(slapd, tmp_path):
    settings = LdapSettings.from_env(slapd.ledger_env(tmp_path / "pw"))
    assert slapd.reader_password not in repr(settings)
    assert (await LdapDirectory(settings).users())[0].login == "ann"
