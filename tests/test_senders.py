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


def test_the_ledger_answers_its_queries_to_the_administrator_alone():
    # Balances, holds, statements and the user list say who printed what and who has how
    # much: only `platenctl` asks them. The broker's permissions already keep print
    # servers and desktops from publishing them; the ledger checks the sender as well, so
    # a permission set too wide by mistake does not open them.
    ledger = discovery.specs()["account-ledger"].subscriptions
    queries = [m for m in ledger.received("commands") if issubclass(m, Query)]
    assert {m.message_type for m in queries} >= {"ledger.user.show", "ledger.statement"}
    assert {m.message_type: ledger.senders.get(m) for m in queries} == {
        m.message_type: {"admin"} for m in queries
    }
