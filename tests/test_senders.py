"""Every command a service handles either names who may send it, or is one of those open
to whoever the broker lets publish it (which the broker's permissions then decide)."""

from platen.events.base import Query
from platen.messaging import discovery

# Sent by print servers (job-capture checks which print server, by user_id, itself) or
# by platenctl, and changing no money, user or identity.
OPEN = {
    "capture.submit",
    "capture.job.outcome",
    "capture.job.cancel",
    "capture.job.heartbeat",
    "service.dead_letters.replay",
}


def test_every_command_names_its_senders_or_is_open_on_purpose():
    undecided = []
    for spec in discovery.specs().values():
        subscriptions = spec.subscriptions
        for model in subscriptions.received("commands"):
            if issubclass(model, Query) or model.message_type in OPEN:
                continue
            if model not in subscriptions.senders:
                undecided.append(f"{spec.name}: {model.message_type}")
    assert undecided == []


def test_money_and_identities_are_the_administrators_alone():
    senders = {}
    for spec in discovery.specs().values():
        for model, allowed in spec.subscriptions.senders.items():
            senders[model.message_type] = allowed
    for key in (
        "ledger.topup",
        "ledger.adjust",
        "ledger.refund",
        "ledger.transfer",
        "ledger.user.add",
        "ledger.user.set",
        "ledger.user.delete",
        # Who printed what and who paid: reports and invoices are queries, but not open.
        "ledger.report",
        "ledger.account.invoice",
        "notification.credential.issue",
        "notification.printserver.add",
        "pricing.printer.add",
    ):
        assert senders[key] == {"admin"}, key
    assert senders["ledger.job.answer"] == {"notification"}
