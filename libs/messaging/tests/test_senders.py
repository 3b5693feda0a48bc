"""Who may send a command, by the broker-checked AMQP user_id. Pure logic."""

from typing import ClassVar

import pytest

from platen.events.base import Command
from platen.messaging.senders import ADMIN, SenderCheck, identity_user, prefix_of
from platen.messaging.subscriptions import Subscriptions


def test_identities_are_named_as_the_installer_names_them():
    assert identity_user("admin") == "platen-admin"
    assert identity_user("notification", "t1-") == "t1-platen-notification"
    assert prefix_of("t1-platen-account-ledger", "account-ledger") == "t1-"
    assert prefix_of("platen-account-ledger", "account-ledger") == ""
    assert prefix_of("guest", "account-ledger") is None
    assert prefix_of(None, "account-ledger") is None


@pytest.mark.parametrize("prefix", ["", "t7-"])
def test_a_restricted_command_is_accepted_only_from_its_senders(prefix):
    check = SenderCheck("account-ledger", f"{prefix}platen-account-ledger")
    assert check.active
    assert check.refusal("ledger.topup", ADMIN, f"{prefix}platen-admin") is None
    assert (
        check.refusal("ledger.job.answer", ("notification",), f"{prefix}platen-notification")
        is None
    )
    for sender in (f"{prefix}platen-pricing", "platen-admin-x", "guest", "alice"):
        if sender == f"{prefix}platen-admin":
            continue
        reason = check.refusal("ledger.topup", ADMIN, sender)
        assert reason == f"ledger.topup is accepted only from admin; this one came from {sender}"
    assert "did not say who it is" in check.refusal("ledger.topup", ADMIN, None)
    # Another installation's administrator on the same broker is someone else.
    assert check.refusal("ledger.topup", ADMIN, "t9-platen-admin") is not None


def test_an_unrestricted_command_is_open_to_whoever_the_broker_lets_publish_it():
    check = SenderCheck("pricing", "platen-pricing")
    assert check.refusal("pricing.quote", None, None) is None


def test_a_service_sharing_one_broker_user_with_everything_checks_nothing():
    check = SenderCheck("account-ledger", "guest")
    assert not check.active
    assert check.refusal("ledger.topup", ADMIN, "guest") is None


def test_the_declaration_says_who_may_send():
    class Grant(Command):
        message_type: ClassVar[str] = "demo.grant"

    class Look(Command):
        message_type: ClassVar[str] = "demo.look"

    subscribe = Subscriptions("demo", command_prefix="demo")

    @subscribe.command(Grant, senders=ADMIN)
    async def on_grant(ctx, cmd) -> None: ...

    @subscribe.command(Look)
    async def on_look(ctx, cmd) -> None: ...

    assert subscribe.senders == {Grant: frozenset({"admin"})}
