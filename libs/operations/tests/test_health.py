"""The containers' health check (platen.operations.health): a service is healthy when each
of its queues has a consumer of its own broker user from this host."""

from __future__ import annotations

from platen.operations.health import main, missing_consumers, own_addresses

QUEUES = ["pricing.commands", "pricing.events"]


def consumer(queue: str, user: str = "platen-pricing", host: str = "10.88.0.5") -> dict:
    return {"queue": {"name": queue}, "channel_details": {"user": user, "peer_host": host}}


def test_healthy_when_every_queue_has_its_own_consumer():
    consumers = [consumer(q) for q in QUEUES]
    assert missing_consumers(consumers, QUEUES, "platen-pricing", {"10.88.0.5"}) == []


def test_a_queue_without_a_consumer_is_named():
    consumers = [consumer("pricing.commands")]
    assert missing_consumers(consumers, QUEUES, "platen-pricing", {"10.88.0.5"}) == [
        "pricing.events"
    ]


def test_another_replicas_consumers_do_not_vouch_for_this_one():
    consumers = [consumer(q, host="10.88.0.9") for q in QUEUES]
    assert missing_consumers(consumers, QUEUES, "platen-pricing", {"10.88.0.5"}) == QUEUES


def test_another_users_consumers_do_not_count():
    consumers = [consumer(q, user="platen-admin") for q in QUEUES]
    assert missing_consumers(consumers, QUEUES, "platen-pricing", {"10.88.0.5"}) == QUEUES


def test_a_consumer_list_without_channel_details_is_not_healthy():
    consumers = [{"queue": {"name": q}} for q in QUEUES]
    assert missing_consumers(consumers, QUEUES, "platen-pricing", {"10.88.0.5"}) == QUEUES


def test_a_consumer_the_broker_has_no_channel_statistics_for_yet_is_not_counted():
    # The management API's form for it (seen in the compose stack, whose broker collects
    # statistics every 5 s): an empty list, not an object. The check answers, not crashes.
    consumers = [{"queue": {"name": q}, "channel_details": []} for q in QUEUES]
    assert missing_consumers(consumers, QUEUES, "platen-pricing", {"10.88.0.5"}) == QUEUES


def test_loopback_is_always_one_of_this_hosts_addresses():
    assert {"127.0.0.1", "::1"} <= own_addresses()


def test_without_its_settings_it_says_what_is_missing(monkeypatch, capsys):
    monkeypatch.delenv("PLATEN_AMQP_URL", raising=False)
    monkeypatch.delenv("PLATEN_BROKER_MONITOR_URL", raising=False)
    assert main(["pricing"]) == 2
    assert "PLATEN_BROKER_MONITOR_URL" in capsys.readouterr().err
    assert main([]) == 2
