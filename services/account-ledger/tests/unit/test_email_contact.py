"""How a user is reached by email: set by an administrator or the directory, announced to
the notification service as `user.contact_set` with a growing revision (fake store)."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from pydantic import ValidationError

from platen.account_ledger.domain import DirectoryUser
from platen.account_ledger.handlers import directory, users
from platen.events.accounts import AddUser, SetUser, UserContactSet
from platen.events.directory import SetNewUserRule, SyncDirectory
from platen.messaging.fakes import FakeContext

from .fakes import FakeStore


@pytest.fixture
def ctx() -> FakeContext:
    return FakeContext(store=FakeStore(), producer="account-ledger")


async def test_an_administrator_sets_the_address_and_the_choice(ctx):
    await users.on_add_user(ctx, AddUser(login="bob"))
    assert ctx.messages(UserContactSet) == []  # no address, nothing to tell
    view = await users.on_set_user(ctx, SetUser(login="bob", email="bob@example.org"))
    assert (view.email, view.email_notices) == ("bob@example.org", False)
    view = await users.on_set_user(ctx, SetUser(login="bob", email_notices=True))
    assert view.email_notices is True
    view = await users.on_set_user(ctx, SetUser(login="bob", email=""))
    assert view.email is None
    said = [(m.email, m.email_notices, m.revision) for m in ctx.messages(UserContactSet)]
    assert said == [("bob@example.org", False, 1), ("bob@example.org", True, 2), (None, True, 3)]
    await users.on_set_user(ctx, SetUser(login="bob", restricted=False))
    assert len(ctx.messages(UserContactSet)) == 3  # other settings tell nothing


@pytest.mark.parametrize("bad", ["no-at-sign", "a@b\r\nBcc: c@d", "a b@c", "<a@b>"])
def test_an_address_no_mail_server_would_take_is_refused(bad):
    with pytest.raises(ValidationError):
        SetUser(login="bob", email=bad)


async def test_the_directory_gives_a_new_user_their_address(ctx):
    await directory.on_set_rule(ctx, SetNewUserRule(match="staff", initial_balance=D("1")))
    ann = DirectoryUser("ann", "Ann", "ann@example.org", None, ("staff",))
    ctx.prepared = directory.Listing("nss", [ann])
    await directory.on_sync(ctx, SyncDirectory())
    [told] = ctx.messages(UserContactSet)
    assert (told.login, told.email, told.email_notices, told.revision) == (
        "ann",
        "ann@example.org",
        False,
        1,
    )
    # A changed address in the directory is announced again, with the next revision.
    ctx.prepared = directory.Listing(
        "nss", [DirectoryUser("ann", "Ann", "a2@example.org", None, ("staff",))]
    )
    await directory.on_sync(ctx, SyncDirectory())
    assert [(m.email, m.revision) for m in ctx.messages(UserContactSet)][-1] == (
        "a2@example.org",
        2,
    )


async def test_a_directory_address_with_a_line_break_is_announced_as_none(ctx):
    await directory.on_set_rule(ctx, SetNewUserRule(match="staff"))
    bad = DirectoryUser("ann", "Ann", "ann@example.org\r\nBcc: x@y", None, ("staff",))
    ctx.prepared = directory.Listing("nss", [bad])
    await directory.on_sync(ctx, SyncDirectory())
    [told] = ctx.messages(UserContactSet)
    assert told.email is None
