"""The permission sets, read as RabbitMQ would read them (pure logic)."""

import re
import uuid

import pytest

from platen.broker_setup import permissions as p
from platen.events.routing import (
    REPLAY,
    REPLIES,
    decision_key,
    reply_key,
    reply_prefix,
    reply_user,
)
from platen.messaging import discovery
from platen.messaging.topology import all_queues, consumer_queues
from platen.testing.identities import USER_PREFIX


def test_a_desktop_reads_only_its_own_queue_and_replies_only_as_itself():
    alice = p.desktop_user("alice")
    assert alice.may("read", "desktop.alice")
    assert not alice.may("read", "desktop.alice2")
    assert not alice.may("read", "desktop.bob")
    assert not alice.may("configure", "desktop.alice")
    assert alice.may_publish("platen.desktop.replies", "user.alice.answer")
    assert not alice.may_publish("platen.desktop.replies", "user.bob.answer")
    assert not alice.may_publish("platen.desktop.replies", "user.alice.answer.extra")
    assert not alice.may_publish("platen.events", "job.printed")
    assert not alice.may_publish("platen.commands", "ledger.job.answer")
    assert not alice.may_publish("amq.default", "desktop.bob")


def test_each_desktop_of_a_user_reads_its_own_queue_and_replies_for_the_login():
    pc1, pc2 = p.desktop_user("alice~pc1"), p.desktop_user("alice~pc2")
    own = p.desktop_user("alice")
    assert pc1.may("read", "desktop.alice:pc1") and not pc1.may("read", "desktop.alice:pc2")
    assert not pc1.may("read", "desktop.alice") and not own.may("read", "desktop.alice:pc1")
    assert not pc1.may("read", "desktop.bob:pc1") and not pc1.may("read", "desktop.bob")
    # Desktops cannot configure (delete, bind) queues at all.
    assert not any(d.may("configure", "desktop.alice:pc1") for d in (pc1, pc2, own))
    assert pc1.topics == pc2.topics == own.topics
    assert pc2.may_publish("platen.desktop.replies", "user.alice.answer")
    assert not pc2.may_publish("platen.desktop.replies", "user.bob.answer")


def test_a_login_with_regex_characters_matches_only_itself():
    odd = p.desktop_user("a-b@c")
    assert odd.may("read", "desktop.a-b@c")
    assert not odd.may("read", "desktop.aXb@c")


def test_services_publish_only_what_they_are_the_source_of():
    pricing = p.service("pricing")
    assert pricing.may_publish("platen.events", "job.priced")
    assert not pricing.may_publish("platen.events", "job.printed")
    assert not pricing.may_publish("platen.events", "account.balance_changed")
    assert not pricing.may_publish("platen.commands", "ledger.topup")
    assert not pricing.may("read", "account-ledger.commands")
    assert pricing.may("read", "pricing.events")
    notification = p.service("notification")
    assert notification.may_publish("platen.commands", "ledger.job.answer")
    assert not notification.may_publish("platen.commands", "ledger.topup")
    assert notification.may_publish("platen.desktop", "user.alice.prompt")
    assert notification.may("configure", "desktop.alice")
    assert not p.service("account-ledger").may("configure", "desktop.alice")
    assert not p.service("account-ledger").may_publish("platen.desktop", "user.alice.x")


def test_unknown_service_is_refused():
    with pytest.raises(ValueError, match="unknown service"):
        p.service("mallory")


def test_the_admin_sends_commands_and_publishes_no_events():
    admin = p.admin()
    assert admin.may_publish("platen.commands", "ledger.topup")
    assert not admin.may_publish("platen.events", "job.printed")
    assert not admin.may("read", "desktop.alice")


def test_the_print_server_only_submits_and_reports_jobs():
    cups = p.print_server()
    assert cups.may_publish("platen.commands", "capture.submit")
    assert cups.may_publish("platen.commands", "capture.job.status")
    assert cups.may_publish("platen.commands", "capture.job.outcome")
    assert not cups.may_publish("platen.commands", "ledger.topup")
    # Not the list of every job (users, documents), nor anything else of job-capture's.
    assert not cups.may_publish("platen.commands", "capture.jobs.list")
    assert not cups.may_publish("platen.commands", "capture.analyse")
    assert not cups.may_publish("platen.commands", "capture.ping")
    assert not cups.may("read", "desktop.alice")
    for key in ("capture.job.status", "capture.job.outcome"):
        assert cups.may_publish("platen.commands", key)
    # A print server must not make its own queues `trusted`, nor read everyone's jobs.
    for key in ("capture.printer.identity.set", "capture.jobs.list", "capture.submitx"):
        assert not cups.may_publish("platen.commands", key), key


def test_the_print_server_sends_only_the_commands_of_a_job_it_holds():
    cups = p.print_server()
    for key in (
        "capture.submit",
        "capture.job.status",
        "capture.job.cancel",
        "capture.job.heartbeat",
        "capture.job.outcome",
    ):
        assert cups.may_publish("platen.commands", key), key
    # Not the job list (every user's jobs), not a quote's analysis, nothing made up.
    for key in ("capture.jobs.list", "capture.analyse", "capture.job.outcome.x", "capture.x"):
        assert not cups.may_publish("platen.commands", key), key
    assert not cups.may_publish("platen.events", "job.printed")


def test_every_service_reads_exactly_its_own_queues_of_the_topology():
    for service in discovery.specs():
        own = {q.name for q in consumer_queues(service)}
        perms = p.service(service)
        for queue in all_queues():
            assert perms.may("read", queue) == (queue in own), (service, queue)
            assert perms.may("read", f"{queue}.dlq") == (queue in own), (service, queue)
            # Configure is also delete: nobody may drop another service's queue.
            assert perms.may("configure", queue) == (queue in own), (service, queue)
            assert perms.may("write", queue) == (queue in own), (service, queue)


def _identities() -> dict[str, p.Permissions]:
    found = {s: p.service(s, f"platen-{s}") for s in discovery.specs()}
    found["admin"] = p.admin("platen-admin")
    found["print server"] = p.print_server("platen-print-server.lab")
    found["desktop"] = p.desktop_user("alice")
    return found


def test_no_identity_may_publish_to_the_default_exchange():
    # RabbitMQ checks a publish to "" as a write to `amq.default`.
    writers = [name for name, perms in _identities().items() if perms.may("write", "amq.default")]
    assert writers == []


def _may_bind(perms: p.Permissions, exchange: str, key: str) -> bool:
    """RabbitMQ on queue.bind to a topic exchange: read on it, and its topic read."""
    topic = perms.topic(exchange)
    read = topic.read if topic else ".*"
    return perms.may("read", exchange) and re.search(read, key) is not None


def test_each_requester_binds_replies_only_under_its_own_user():
    lab, lab2 = "platen-print-server.lab", "platen-print-server.lab.2"
    server = p.print_server(lab)
    assert _may_bind(server, REPLIES, reply_key(lab, "amq.gen-abc"))
    assert not _may_bind(server, REPLIES, reply_key(lab2, "amq.gen-abc"))
    # `lab.2`'s key, had the users been written as themselves: not `lab`'s either.
    assert not _may_bind(server, REPLIES, f"reply.{lab}.2.amq.gen-abc")
    assert not _may_bind(server, REPLIES, "#")
    assert not _may_bind(p.service("pricing", "platen-pricing"), REPLIES, "reply.platen-admin.q")
    assert not _may_bind(p.print_server(None), REPLIES, reply_key("", "q"))
    assert not _may_bind(p.desktop_user("alice"), REPLIES, reply_key("alice", "q"))
    admin = p.admin("platen-admin")
    assert _may_bind(admin, REPLIES, reply_key("platen-admin", "amq.gen-x"))
    assert not admin.may_publish(REPLIES, reply_key("platen-admin", "amq.gen-x"))


def test_a_print_server_binds_only_its_own_jobs_decisions():
    """job-capture pushes a CUPS job's decision under its print server's decision key: a
    print server may bind its own, never another's, nor a wildcard over them."""
    lab = p.print_server(f"{USER_PREFIX}platen-print-server.lab")
    job = uuid.uuid4()
    assert _may_bind(lab, REPLIES, decision_key("lab", job))
    # `lab.2`'s name is one word of its keys (`decision.lab%2E2.<job>`): not under lab's.
    for other in ("lab.2", "lab2", "la", "other"):
        assert not _may_bind(lab, REPLIES, decision_key(other, job))
    for wildcard in ("#", "decision.#", "decision.*.#", f"decision.*.{job}"):
        assert not _may_bind(lab, REPLIES, wildcard)
    assert not lab.may_publish(REPLIES, decision_key("lab", job))
    # Not a print server (an administrator, a desktop): no decision keys at all.
    assert not _may_bind(p.print_server("platen-admin"), REPLIES, decision_key("lab", job))
    assert not _may_bind(p.desktop_user("lab"), REPLIES, decision_key("lab", job))
    # Only the service that declares decision pushes publishes them.
    capture = p.service("job-capture", "platen-job-capture")
    assert capture.may_publish(REPLIES, decision_key("lab", job))
    for other in ("pricing", "account-ledger", "notification"):
        service = p.service(other, f"platen-{other}")
        assert not service.may_publish(REPLIES, decision_key("lab", job))
        assert service.may_publish(REPLIES, reply_key("platen-admin", "q"))


@pytest.mark.parametrize(
    "user", ["a", "a.b", "a%2Eb", "platen-print-server.x.y", "t-1_x", "é.*#", "a b"]
)
def test_a_user_is_one_word_of_a_reply_key_and_no_other_users_prefix(user):
    word = reply_user(user)
    assert re.fullmatch(r"[A-Za-z0-9_%-]+", word)
    others = {"a", "a.b", "a%2Eb", "a.", "platen-print-server.x", "é", "a b."} - {user}
    for other in others:
        assert reply_user(other) != word
        assert not reply_key(other, "q").startswith(reply_prefix(user))


def test_a_service_replays_only_into_its_own_queues():
    pricing = p.service("pricing", "platen-pricing")
    own = {q.name for q in consumer_queues("pricing")}
    for queue in all_queues():
        assert pricing.may_publish(REPLAY, queue) == (queue in own), queue
        assert _may_bind(pricing, REPLAY, queue) == (queue in own), queue
    assert pricing.may_publish(REPLIES, reply_key("platen-admin", "q"))


def test_the_peer_address_is_read_from_the_name_the_broker_gave_the_connection():
    from platen.broker_setup.broker_admin import peer_of

    assert peer_of("10.1.2.3:45024 -> 10.0.0.1:5672") == "10.1.2.3"
    assert peer_of("fe80::1:45024 -> fe80::2:5672") == "fe80::1"
    # A name of another shape (what a client might choose) gives no address.
    assert peer_of("platen-client/alice") is None
    assert peer_of("10.1.2.3 -> 10.0.0.1:5672") is None
