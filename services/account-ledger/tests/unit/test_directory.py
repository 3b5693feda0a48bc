"""Users from the directory: what a sync does (domain), the new-user rules, and a user made
on their first job, through the handlers with an in-memory store and no directory server
(the directory's answer is what the step before the transaction would hand over)."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from platen.account_ledger.directory import Lookup
from platen.account_ledger.domain import (
    ANYONE,
    DirectoryEmpty,
    DirectoryUser,
    Known,
    NewUserRule,
    plan_sync,
    rule_for,
)
from platen.account_ledger.handlers import directory, jobs, users
from platen.events.accounts import (
    AddUser,
    UserAdded,
    UserDisabled,
    UserGroupsSet,
)
from platen.events.directory import (
    ListNewUserRules,
    RemoveNewUserRule,
    SetNewUserRule,
    SyncDirectory,
)
from platen.events.jobs import JobAuthorized, JobDenied
from platen.events.system import ErrorReply
from platen.messaging.fakes import FakeContext

from ..builders import priced
from .fakes import FakeStore

STAFF = NewUserRule("staff", 0, D("10.00"), True, D("0"))
ANY = NewUserRule(ANYONE, 5, D("1.00"), True, D("0"))


@pytest.fixture
def ctx() -> FakeContext:
    return FakeContext(store=FakeStore(), producer="account-ledger")


def person(login: str, *groups: str, name: str | None = None) -> DirectoryUser:
    return DirectoryUser(login, name or login.title(), f"{login}@example.org", None, groups)


def known(login: str, *groups: str, directory: bool = True, enabled: bool = True) -> Known:
    return Known(login, enabled, directory, groups, login.title(), f"{login}@example.org")


# ----------------------------------------------------------------- domain


def test_the_first_rule_by_position_that_matches_a_group_decides():
    lab = NewUserRule("lab", 1, D("2.00"))
    assert rule_for(("lab", "staff"), [lab, STAFF]) is STAFF  # position 0 before 1
    assert rule_for(("lab",), [lab, STAFF, ANY]) is lab
    assert rule_for(("guests",), [lab, STAFF, ANY]) is ANY
    assert rule_for(("guests",), [lab, STAFF]) is None


def test_a_sync_adds_updates_and_disables_but_leaves_hand_made_users_alone():
    listed = [
        person("ann", "staff"),  # new, a rule matches
        person("bob", "guests"),  # new, no rule
        person("cat", "staff", "lab"),  # known, a new group
        person("dan", "staff"),  # known, unchanged
        person("eve", "staff"),  # made by hand, now found in the directory
    ]
    plan = plan_sync(
        listed,
        [
            known("cat", "staff"),
            known("dan", "staff"),
            known("eve", "staff", directory=False),
            known("fay", "staff"),  # gone from the directory
            known("gil", directory=False),  # made by hand, never in the directory
            known("hal", enabled=False),  # gone, and disabled already
        ],
        [STAFF],
    )
    assert [(u.login, r.match) for u, r in plan.add] == [("ann", "staff")]
    assert plan.no_rule == ["bob"]
    assert [u.login for u in plan.change] == ["cat", "eve"]
    assert plan.disable == ["fay"]


def test_an_empty_directory_changes_nothing():
    with pytest.raises(DirectoryEmpty):
        plan_sync([], [known("ann", "staff")], [STAFF])


# ----------------------------------------------------------------- handlers


async def test_a_sync_adds_with_the_rule_changes_groups_and_disables(ctx):
    await directory.on_set_rule(ctx, SetNewUserRule(match="staff", initial_balance=D("10.00")))
    await users.on_add_user(ctx, AddUser(login="old", groups=["staff"]))
    await ctx.store.set_profile(person("old", "staff"))  # a user an earlier sync made
    listing = directory.Listing("nss", [person("new", "staff"), person("odd", "guests")])
    ctx.prepared = listing
    dry = await directory.on_sync(ctx, SyncDirectory(dry_run=True))
    assert [a.login for a in dry.added] == ["new"] and dry.disabled == ["old"]
    assert dry.no_rule == ["odd"] and await ctx.store.user("new") is None  # nothing done

    before = len(ctx.emitted)
    done = await directory.on_sync(ctx, SyncDirectory())
    assert (done.listed, done.dry_run) == (2, False)
    assert await ctx.store.balance("personal:new") == D("10.00")
    assert (await ctx.store.user("new")).groups == ["staff"]
    assert (await ctx.store.user("old")).enabled is False
    kinds = [type(m.message) for m in ctx.emitted[before:]]
    assert UserAdded in kinds and UserGroupsSet in kinds and UserDisabled in kinds
    again = await directory.on_sync(ctx, SyncDirectory())
    assert (again.added, again.changed, again.disabled) == ([], [], [])


async def test_a_sync_that_cannot_read_the_directory_changes_nothing(ctx):
    await users.on_add_user(ctx, AddUser(login="kim"))
    await ctx.store.set_profile(person("kim"))
    for listing, why in [
        (directory.Listing("ldap://x", [], "ldap://x: timed out"), "timed out"),
        (directory.Listing("ldap://x", []), "listed no users"),
        (None, "no directory is set up"),
    ]:
        ctx.prepared = listing
        reply = await directory.on_sync(ctx, SyncDirectory())
        assert isinstance(reply, ErrorReply) and why in reply.error
    assert (await ctx.store.user("kim")).enabled is True


async def test_rules_are_kept_in_order_replaced_and_removed(ctx):
    await directory.on_set_rule(ctx, SetNewUserRule(match="staff"))
    await directory.on_set_rule(ctx, SetNewUserRule(match="*", initial_balance=D("1.00")))
    listed = await directory.on_set_rule(
        ctx, SetNewUserRule(match="lab", position=0, overdraft_limit=D("5.00"))
    )
    assert [(r.match, r.position) for r in listed.rules] == [("lab", 0), ("staff", 0), ("*", 1)]
    again = await directory.on_set_rule(ctx, SetNewUserRule(match="staff", restricted=False))
    assert [(r.match, r.restricted) for r in again.rules][1] == ("staff", False)
    removed = await directory.on_remove_rule(ctx, RemoveNewUserRule(match="lab"))
    assert [r.match for r in removed.rules] == ["staff", "*"]
    missing = await directory.on_remove_rule(ctx, RemoveNewUserRule(match="lab"))
    assert isinstance(missing, ErrorReply)
    assert [r.match for r in (await directory.on_list_rules(ctx, ListNewUserRules())).rules] == [
        "staff",
        "*",
    ]


async def test_a_directory_user_is_made_on_their_first_job_and_charged(ctx):
    await directory.on_set_rule(
        ctx, SetNewUserRule(match="staff", initial_balance=D("5.00"), overdraft_limit=D("2.00"))
    )
    ctx.prepared = Lookup(person("ivy", "staff", name="Ivy Green"))
    await jobs.on_job_priced(ctx, priced("ivy", "0.30"))
    assert ctx.messages(JobDenied) == [] and len(ctx.messages(JobAuthorized)) == 1
    account = await ctx.store.account("personal:ivy")
    assert (account.balance, account.held, account.overdraft_limit) == (
        D("5.00"),
        D("0.30"),
        D("2.00"),
    )
    assert ctx.store.profiles["ivy"].full_name == "Ivy Green"
    assert [m.login for m in ctx.messages(UserAdded)] == ["ivy"]


@pytest.mark.parametrize(
    ("lookup", "reason"),
    [
        (Lookup(None), "is not in the directory"),
        (Lookup(person("ned", "guests")), "no new-user rule takes 'ned' (groups: guests)"),
        (Lookup(None, "ldap://x: refused"), "could not be checked in the directory"),
    ],
)
async def test_a_job_from_someone_no_rule_takes_is_denied_with_the_reason(ctx, lookup, reason):
    await directory.on_set_rule(ctx, SetNewUserRule(match="staff"))
    ctx.prepared = lookup
    await jobs.on_job_priced(ctx, priced("ned"))
    [denied] = ctx.messages(JobDenied)
    assert reason in denied.reason
    assert await ctx.store.user("ned") is None and ctx.messages(UserAdded) == []


async def test_without_a_directory_an_unknown_user_is_denied_as_before(ctx):
    await jobs.on_job_priced(ctx, priced("zed"))
    [denied] = ctx.messages(JobDenied)
    assert denied.reason == "user 'zed' has no account"
