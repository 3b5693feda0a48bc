"""The ports the test servers are given (`free_port`)."""

from __future__ import annotations

import socket

import pytest

from platen.localstack.servers import EPHEMERAL_PORTS, LOWEST_PORT, free_port

# Real sockets on the loopback (no server): the tier that may open them.
pytestmark = pytest.mark.integration


def test_a_servers_port_is_never_one_an_outgoing_connection_may_take():
    """Below the kernel's ephemeral range: a server restarted on its port (a cluster node
    rejoining) finds it still free, whatever connected meanwhile."""
    low = int(EPHEMERAL_PORTS.read_text().split()[0])
    ports = {free_port() for _ in range(50)}
    assert all(LOWEST_PORT <= port < low for port in ports)
    assert len(ports) > 40  # spread, not one port handed out again and again
    for port in ports:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))  # and free


def test_a_port_in_use_is_not_given():
    taken = []
    try:
        for _ in range(200):  # listeners on ports free_port would choose
            s = socket.socket()
            s.bind(("127.0.0.1", free_port()))
            s.listen()
            taken.append(s)
        held = {s.getsockname()[1] for s in taken}
        assert len(held) == 200
        assert not {free_port() for _ in range(200)} & held
    finally:
        for s in taken:
            s.close()
