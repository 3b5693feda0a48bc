"""A user's own password checked by a bind as that user, against a real OpenLDAP `slapd`
that refuses clear-text binds: accepted, wrong, unknown, ambiguous, empty, and a directory
that is down, each said as such."""

from __future__ import annotations

import pytest

from platen.directory.ldap import DirectoryUnavailable, LdapSettings, Verdict, verify_password
from platen.testing.ldap import Person, running_slapd

pytestmark = pytest.mark.integration  # a real server, started by the test itself


@pytest.fixture(scope="module")
def slapd(tmp_path_factory):
    with running_slapd(tmp_path_factory.mktemp("slapd")) as server:
        server.add_person(Person("ann", "Ann Able", 10001, password="ann-s3cret-pw"))
        server.add_person(Person("Dee.Dot", "Dee Dot", 10004, password="dee pass"))
        server.add_person(Person("nopw", "No Password", 10005))
        yield server


@pytest.fixture
def settings(slapd, tmp_path):
    return LdapSettings.from_env(slapd.ledger_env(tmp_path / "reader-password"))


def test_the_users_own_password_is_accepted_and_others_are_not(settings):
    assert verify_password(settings, "ann", "ann-s3cret-pw") is Verdict.ACCEPTED
    assert verify_password(settings, "ann", "ann-s3cret-px") is Verdict.WRONG_PASSWORD
    # Logins match without regard to case, as everywhere in Platen.
    assert verify_password(settings, "dee.dot", "dee pass") is Verdict.ACCEPTED
    assert verify_password(settings, "nobody", "ann-s3cret-pw") is Verdict.UNKNOWN_USER
    # An entry with no password can never be signed in as.
    assert verify_password(settings, "nopw", "anything") is Verdict.WRONG_PASSWORD


def test_an_empty_password_is_never_an_anonymous_bind_that_passes(settings):
    assert verify_password(settings, "ann", "") is Verdict.WRONG_PASSWORD


def test_a_login_with_filter_characters_finds_nobody(settings):
    # `*` would match every uid if it reached the filter unescaped.
    assert verify_password(settings, "*", "ann-s3cret-pw") is Verdict.UNKNOWN_USER
    assert verify_password(settings, "a*", "ann-s3cret-pw") is Verdict.UNKNOWN_USER


def test_a_refused_reader_or_a_directory_that_is_down_is_unavailable_not_a_wrong_password(
    settings, slapd, tmp_path
):
    wrong_reader = tmp_path / "wrong"
    wrong_reader.write_text("not the reader's password")
    with pytest.raises(DirectoryUnavailable, match="reader"):
        verify_password(
            LdapSettings(**{**settings.__dict__, "password_file": str(wrong_reader)}),
            "ann",
            "ann-s3cret-pw",
        )
    down = LdapSettings(**{**settings.__dict__, "url": "ldap://127.0.0.1:9", "timeout": 2})
    with pytest.raises(DirectoryUnavailable):
        verify_password(down, "ann", "ann-s3cret-pw")
