"""Whose a captured job is: the pure rule of `platen.job_capture.identity`."""

from ipaddress import ip_address

import pytest

from platen.job_capture.identity import Desktop, decide, origin_of, parse_address
from platen.job_capture.presence import is_desktop_user

A, B = ip_address("127.0.0.1"), ip_address("127.0.0.2")
LAN = ip_address("10.0.0.7")


def job(mode="desktop", *, user="alice", host="10.0.0.7", desktops=(), source="cups"):
    return decide(
        mode,
        source=source,
        user=user,
        origin=origin_of(host),
        desktops=None if desktops is None else list(desktops),
    )


def test_the_users_own_desktop_alone_at_the_host_proves_the_job():
    assert job(desktops=[Desktop("alice", LAN), Desktop("bob", A)]) == "present"


@pytest.mark.parametrize(
    "desktops",
    [
        [],  # nobody's desktop there
        [Desktop("bob", LAN)],  # someone else's
        [Desktop("alice", LAN), Desktop("bob", LAN)],  # a terminal server
        [Desktop("alice", A)],  # hers, but on another host
    ],
)
def test_anything_else_leaves_the_job_unverified(desktops):
    assert job(desktops=desktops) == "unverified"


def test_unknown_presence_or_origin_is_unproven():
    assert job(desktops=None) == "unverified"
    assert job(host=None, desktops=[Desktop("alice", LAN)]) == "unverified"
    assert job(host="pc7.example", desktops=[Desktop("alice", LAN)]) == "unverified"


def test_localhost_is_any_loopback_address_as_cupsd_reports_them_all_so():
    assert job(host="localhost", desktops=[Desktop("alice", B)]) == "present"
    assert job(host="localhost", desktops=[Desktop("alice", A), Desktop("bob", B)]) == (
        "unverified"
    )
    # A numeric origin is that address only.
    assert job(host="127.0.0.1", desktops=[Desktop("alice", A), Desktop("bob", B)]) == "present"


def test_the_other_modes_do_not_look_at_desktops():
    assert job("trusted", desktops=None) == "trusted"
    assert job("authenticated", desktops=[Desktop("bob", LAN)]) == "authenticated"
    assert job("desktop", source="api", desktops=None) == "api"


def test_addresses_as_the_broker_and_cups_write_them():
    assert parse_address("::ffff:127.0.0.2") == B
    assert parse_address("[::1]") == ip_address("::1")
    assert parse_address("fe80::1%eth0") == ip_address("fe80::1")
    assert parse_address("pc7.example") is None
    assert origin_of("pc7.example", ["10.0.0.7", "garbage"]).holds(LAN)


def test_platen_identities_and_guest_are_never_desktops():
    for name in ("guest", "platen-admin", "test-platen-job-capture", "platen-print-server-2"):
        assert not is_desktop_user(name), name
    for name in ("alice", "bob_smith", "platen"):
        assert is_desktop_user(name), name


async def test_a_desktop_signed_in_as_its_own_broker_user_counts_as_its_login(monkeypatch):
    from platen.job_capture import presence

    class Monitor:
        async def peers(self):
            return [("alice~pc7", "10.0.0.7"), ("alice", "10.0.0.7"), ("platen-admin", "10.0.0.7")]

    monkeypatch.setattr(presence, "_monitor", Monitor())
    found = await presence.desktops()
    assert found == [Desktop("alice", LAN), Desktop("alice", LAN)]
    # Two desktops of alice's at one host are still alice alone there.
    assert job(desktops=found) == "present"
