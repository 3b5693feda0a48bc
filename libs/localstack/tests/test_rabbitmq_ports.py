"""A local broker started beside others: a port it picked that turns out taken is picked
again, and the broker the caller gets is its own (issue 15: no flaky starts under load)."""

from __future__ import annotations

import base64
import json
import socket
import urllib.request

import pytest

from platen.localstack import servers
from platen.localstack.servers import LocalRabbitMQ, PortTaken


def node_answering(rabbit: LocalRabbitMQ) -> str:
    """The name of the node whose management API answers on the broker's port."""
    request = urllib.request.Request(f"{rabbit.management_url}/api/overview")
    request.add_header("Authorization", "Basic " + base64.b64encode(b"guest:guest").decode())
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.load(answer)["node"]


# Starts a real RabbitMQ (twice): an integration test, though it asks for no server fixture.
@pytest.mark.integration
def test_a_broker_handed_a_port_another_holds_starts_again_on_ports_of_its_own(
    tmp_path, monkeypatch
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as held:
        taken = held.getsockname()[1]
        # The first port picked is one another program listens on, as when two servers
        # starting side by side are handed the same free port.
        picks = iter([taken])
        pick = servers.free_port
        monkeypatch.setattr(servers, "free_port", lambda: next(picks, None) or pick())
        rabbit = LocalRabbitMQ(tmp_path / "rabbitmq")
        try:
            rabbit.start()
            assert rabbit.amqp_port != taken
            assert rabbit.nodename != f"platen{taken}@localhost"
            assert node_answering(rabbit) == rabbit.nodename
        finally:
            rabbit.stop()


@pytest.mark.integration
def test_ports_the_caller_chose_are_not_changed_when_taken(tmp_path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as held:
        taken = held.getsockname()[1]
        rabbit = LocalRabbitMQ(tmp_path / "rabbitmq", amqp_port=taken)
        with pytest.raises(PortTaken, match="RabbitMQ did not start"):
            rabbit.start()
        assert rabbit.amqp_port == taken
