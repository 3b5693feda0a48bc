"""The permission sets, read as RabbitMQ would read them (pure logic)."""

import pytest

from platen.messaging import discovery
from platen.messaging import permissions as p
from platen.messaging.topology import all_queues, consumer_queues


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
