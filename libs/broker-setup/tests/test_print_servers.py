"""Print servers' broker user names, and how a service reads the sender of a request."""

import pytest
from pydantic import ValidationError

from platen.broker_setup import print_servers
from platen.broker_setup.installation import IDENTITY_MANAGER, PRESENCE_MONITOR
from platen.events.accounts import UserAdded
from platen.events.base import is_valid_login
from platen.messaging import discovery
from platen.messaging.senders import ADMIN_USER, service_user
from platen.rpc.client import signed_in_as


def test_a_print_server_signs_in_as_a_user_named_after_it():
    assert print_servers.broker_user("print-1") == "platen-print-server.print-1"
    assert print_servers.broker_user("ps.example.org", "test-") == (
        "test-platen-print-server.ps.example.org"
    )
    for bad in ("", "a b", "x/y", "-x", "é", "a" * 65, "x#", "x*"):
        with pytest.raises(ValueError):
            print_servers.broker_user(bad)


def test_the_print_server_name_is_read_back_from_user_id():
    for name in ("print-1", "ps.example.org", "_x"):
        assert print_servers.name_of(print_servers.broker_user(name)) == name
        assert print_servers.name_of(print_servers.broker_user(name, "test-")) == name
    assert print_servers.name_of(None) is None
    assert print_servers.name_of("") is None
    assert print_servers.name_of("platen-print-server") is None  # the old shared user
    assert print_servers.name_of("platen-print-server.") is None


def test_no_desktop_user_can_be_taken_for_a_print_server():
    """Desktop broker users are named after logins, and no login may be (or pass for) one
    of Platen's own identities: whatever login an administrator adds or a directory
    lists, its broker user is never a print server's, a service's or the admin's."""
    own = [
        ADMIN_USER,
        IDENTITY_MANAGER,
        PRESENCE_MONITOR,
        *(service_user(s) for s in discovery.specs()),
        print_servers.broker_user("x"),
        print_servers.broker_user("lab.1", "site1-"),
        "guest",
    ]
    for user in own:
        assert not is_valid_login(user), user
        with pytest.raises(ValidationError, match="kept for Platen"):
            UserAdded(login=user)
    for login in ("alice", "first.last", "a@b", "replatten-fan"):
        assert is_valid_login(login)
        assert print_servers.name_of(login) is None


def test_the_rpc_client_says_who_it_signs_in_as():
    assert signed_in_as("amqps://platen-print-server.p1:pw@h:5671/v") == "platen-print-server.p1"
    assert signed_in_as("amqp://a%40b:pw@h/") == "a@b"
    assert signed_in_as("amqp://h:5672/") == "guest"  # the client library's default
    assert signed_in_as("amqps://h:5671/?auth=EXTERNAL") is None  # named by the certificate
