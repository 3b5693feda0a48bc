"""Print servers' broker user names, and how a service reads the sender of a request."""

import re

import pytest

from platen.events.base import LOGIN_PATTERN
from platen.messaging import discovery, print_servers
from platen.messaging.installation import ADMIN, IDENTITY_MANAGER, service_user
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
    """Desktop broker users are named after logins, and no login holds a dot: whatever
    login an administrator adds, its broker user is never a print server's."""
    assert not re.fullmatch(LOGIN_PATTERN, "platen-print-server.x")
    for login in ("alice", "platen-print-server", "platen-print-server-x", "a@b"):
        assert re.fullmatch(LOGIN_PATTERN, login)
        assert print_servers.name_of(login) is None
    for user in (ADMIN, IDENTITY_MANAGER, *(service_user(s) for s in discovery.specs())):
        assert print_servers.name_of(user) is None


def test_the_rpc_client_says_who_it_signs_in_as():
    assert signed_in_as("amqps://platen-print-server.p1:pw@h:5671/v") == "platen-print-server.p1"
    assert signed_in_as("amqp://a%40b:pw@h/") == "a@b"
    assert signed_in_as("amqp://h:5672/") == "guest"  # the client library's default
    assert signed_in_as("amqps://h:5671/?auth=EXTERNAL") is None  # named by the certificate
