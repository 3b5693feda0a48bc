"""Desktop and print-server identities: the handlers record what the broker must hold,
and `BrokerIdentities` makes it so after the commit, retrying until it can (fake store,
fake management API, no broker)."""

from __future__ import annotations

import asyncio

import pytest

from platen.broker_setup import permissions
from platen.events.accounts import UserAdded, UserDisabled, UserEnabled
from platen.events.identities import (
    AddPrintServer,
    Credential,
    IssueCredential,
    ListPrintServers,
    PrintServerCredential,
    PrintServerList,
    RemovePrintServer,
)
from platen.events.system import ErrorReply
from platen.notification.broker_identities import BrokerIdentities
from platen.notification.domain import PrintServerIdentity
from platen.notification.identities import IdentityHandlers
from platen.notification.print_servers import PrintServerHandlers, on_list

PS_USER = "platen-print-server.ps1"


@pytest.fixture
def identities(broker) -> IdentityHandlers:
    return IdentityHandlers(broker)


@pytest.fixture
def servers(broker) -> PrintServerHandlers:
    return PrintServerHandlers(broker)


def added(login="bob") -> UserAdded:
    return UserAdded(login=login)


async def test_a_new_user_gets_a_queue_and_a_broker_user_only_after_the_commit(
    ctx, store, admin, queues, identities
):
    await identities.on_user_added(ctx, added())
    assert store.desktops == {"bob": True}
    # Nothing on the broker while the transaction may still roll back.
    assert admin.calls == [] and queues.declared == set()
    await ctx.commit()
    assert queues.declared == {"bob"}
    assert admin.calls == [("ensure_user", "bob"), ("grant", "bob")]
    assert admin.granted["bob"] == permissions.desktop_user("bob")


async def test_a_disabled_user_is_revoked_and_signed_out_and_restored_when_enabled(
    ctx, store, admin, identities
):
    await identities.on_user_added(ctx, added())
    await identities.on_user_disabled(ctx, UserDisabled(login="bob"))
    assert store.desktops == {"bob": False}
    admin.connections["bob"] = 2
    await ctx.commit()
    # Both effects read the state as committed: the user is disabled.
    assert "bob" not in admin.granted
    assert ("revoke", "bob") in admin.calls and ("disconnect", "bob") in admin.calls
    assert admin.connections == {}

    await identities.on_user_enabled(ctx, UserEnabled(login="bob"))
    await ctx.commit()
    assert store.desktops == {"bob": True}
    assert admin.granted["bob"] == permissions.desktop_user("bob")


async def test_a_redelivered_user_added_keeps_the_users_state(ctx, store, identities):
    await identities.on_user_added(ctx, added())
    await identities.on_user_disabled(ctx, UserDisabled(login="bob"))
    await identities.on_user_added(ctx, added())
    assert store.desktops == {"bob": False}


async def test_a_sync_the_broker_refuses_is_retried_until_it_succeeds(
    ctx, store, admin, broker, identities
):
    retries = asyncio.create_task(broker.run())
    try:
        await identities.on_user_added(ctx, added())
        admin.fail = 3
        await ctx.commit()  # does not raise: the delivery is done, the broker catches up
        for _ in range(100):
            if "bob" in admin.granted:
                break
            await asyncio.sleep(0.01)
        assert admin.granted["bob"] == permissions.desktop_user("bob")
    finally:
        retries.cancel()


async def test_a_credential_is_set_after_the_commit_and_before_the_reply(
    ctx, store, admin, identities
):
    await store.add_desktop_identity("bob")
    reply = await identities.on_issue_credential(ctx, IssueCredential(login="bob"))
    assert isinstance(reply, Credential)
    assert reply.username == "bob" and len(reply.password) >= 24
    assert "bob" not in admin.passwords  # not yet: the transaction has not committed
    await ctx.commit()  # the dispatcher runs this before it sends the reply
    assert admin.passwords["bob"] == reply.password
    assert admin.granted["bob"] == permissions.desktop_user("bob")


async def test_a_credential_the_broker_refused_is_never_replied(ctx, store, admin, identities):
    await store.add_desktop_identity("bob")
    await identities.on_issue_credential(ctx, IssueCredential(login="bob"))
    admin.fail = 1
    # Raised to the dispatcher: the delivery is given back, and its reply never sent.
    with pytest.raises(ConnectionError):
        await ctx.commit()


@pytest.mark.parametrize(
    ("known", "error"),
    [(None, "no user named 'bob'"), (False, "bob is disabled")],
    ids=["unknown", "disabled"],
)
async def test_no_credential_for_an_unknown_or_disabled_user(
    ctx, store, admin, identities, known, error
):
    if known is not None:
        store.desktops["bob"] = known
    reply = await identities.on_issue_credential(ctx, IssueCredential(login="bob"))
    assert reply == ErrorReply(error=error)
    assert ctx.effects == []


async def test_without_a_management_api_queues_are_made_and_credentials_refused(ctx, store, queues):
    unmanaged = BrokerIdentities()
    unmanaged.configure(None, queues.declare, store.session, queues.delete)
    handlers = IdentityHandlers(unmanaged)
    await handlers.on_user_added(ctx, added())
    await ctx.commit()
    assert queues.declared == {"bob"}
    reply = await handlers.on_issue_credential(ctx, IssueCredential(login="bob"))
    assert "does not manage desktop sign-in" in reply.error
    reply = await PrintServerHandlers(unmanaged).on_add(ctx, AddPrintServer(name="ps1"))
    assert "does not manage broker identities" in reply.error


async def test_a_print_server_is_issued_after_the_commit(ctx, store, admin, servers):
    reply = await servers.on_add(ctx, AddPrintServer(name="ps1"))
    assert isinstance(reply, PrintServerCredential)
    assert reply.username == PS_USER
    assert store.servers["ps1"] == PrintServerIdentity("ps1", PS_USER)
    assert admin.calls == []
    await ctx.commit()
    assert admin.passwords[PS_USER] == reply.password
    assert admin.granted[PS_USER] == permissions.print_server(PS_USER)
    assert ("disconnect", PS_USER) in admin.calls  # the old credential's connections


async def test_a_removed_print_server_is_withdrawn_then_forgotten(ctx, store, admin, servers):
    await servers.on_add(ctx, AddPrintServer(name="ps1"))
    await servers.on_add(ctx, AddPrintServer(name="ps2"))
    await ctx.commit()
    reply = await servers.on_remove(ctx, RemovePrintServer(name="ps1"))
    assert [s.name for s in reply.print_servers] == ["ps2"]
    assert store.servers["ps1"].removed  # until the broker has withdrawn it
    admin.calls.clear()
    await ctx.commit()
    assert admin.calls == [
        ("revoke", PS_USER),
        ("disconnect", PS_USER),
        ("delete_user", PS_USER),
    ]
    assert "ps1" not in store.servers
    listed = await on_list(ctx, ListPrintServers())
    assert isinstance(listed, PrintServerList)
    assert [s.name for s in listed.print_servers] == ["ps2"]


async def test_removing_an_unknown_or_removed_print_server_is_refused(ctx, store, servers):
    reply = await servers.on_remove(ctx, RemovePrintServer(name="ps1"))
    assert reply == ErrorReply(error="no print server named 'ps1'")
    store.servers["ps1"] = PrintServerIdentity("ps1", PS_USER, removed=True)
    store.added_at["ps1"] = None
    reply = await servers.on_remove(ctx, RemovePrintServer(name="ps1"))
    assert reply == ErrorReply(error="no print server named 'ps1'")


async def test_start_up_repairs_everything_the_database_records(store, admin, queues, broker):
    store.desktops.update({"alice": True, "bob": False})
    store.servers["ps1"] = PrintServerIdentity("ps1", PS_USER)
    store.servers["old"] = PrintServerIdentity("old", "platen-print-server.old", removed=True)
    admin.granted["bob"] = "left over"
    await broker.sync_all()
    assert queues.declared == {"alice", "bob"}
    assert admin.granted == {
        "alice": permissions.desktop_user("alice"),
        PS_USER: permissions.print_server(PS_USER),
    }
    assert ("delete_user", "platen-print-server.old") in admin.calls
    assert set(store.servers) == {"ps1"}


async def test_connections_listed_late_are_closed_after_a_disable(ctx, store, admin, queues):
    broker = BrokerIdentities(disconnect_retries=(0, 0), retry_delays=(0,))
    broker.configure(admin, queues.declare, store.session, queues.delete)
    handlers = IdentityHandlers(broker)
    await handlers.on_user_added(ctx, added())
    await handlers.on_user_disabled(ctx, UserDisabled(login="bob"))
    await ctx.commit()
    # A connection the management API had not listed when the user was revoked.
    admin.connections["bob"] = 1
    for _ in range(100):
        if not admin.connections:
            break
        await asyncio.sleep(0.01)
    assert admin.connections == {}


async def test_start_up_looks_for_no_late_connections(store, admin, queues):
    broker = BrokerIdentities(disconnect_retries=(0,), retry_delays=(0,))
    broker.configure(admin, queues.declare, store.session, queues.delete)
    store.desktops["bob"] = False
    await broker.sync_all()
    await asyncio.sleep(0.05)
    assert admin.calls.count(("disconnect", "bob")) == 1
