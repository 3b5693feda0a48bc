"""Client options from the server: who is sent what, and when (fake store, no broker)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from platen.events.accounts import UserGroupsSet
from platen.events.client_options import (
    ClientHello,
    ClientOptionsNotice,
    SetClientOption,
    ShowClientOptions,
    UnsetClientOption,
)
from platen.events.routing import DESKTOP
from platen.events.system import ErrorReply
from platen.notification import desktop_options as handlers
from platen.notification.domain import AnswerRates, desktop_options

T0 = datetime(2026, 12, 1, 12, tzinfo=UTC)


@pytest.fixture(autouse=True)
def hello_rates(monkeypatch, clock):
    rates = AnswerRates(rate=0.2, burst=5)
    monkeypatch.setattr(handlers, "hello_rates", lambda: rates)
    monkeypatch.setattr(handlers, "CLOCK", clock)


def test_groups_win_over_the_site_and_the_stricter_group_wins_a_permission():
    site = {"hide_balance": "false", "title": "Site", "allow_quit": "true"}
    groups = {
        "staff": {"hide_balance": "true", "title": "Staff", "allow_quit": "true"},
        "lab": {"hide_balance": "false", "title": "Lab", "allow_quit": "false"},
    }
    both = desktop_options(site, groups, ["staff", "lab"])
    # Permissions: the restrictive value, whichever group sets it.
    assert both["hide_balance"] == "true" and both["allow_quit"] == "false"
    # Anything else: the group first by name, whatever order the groups come in.
    assert both["title"] == "Lab" == desktop_options(site, groups, ["lab", "staff"])["title"]
    assert desktop_options(site, groups, ["staff"])["title"] == "Staff"
    assert desktop_options(site, groups, ["other"]) == site
    assert desktop_options({}, groups, []) == {}


async def _announce(ctx, event):
    await handlers.on_user_groups_set(ctx, event)


def _notices(ctx) -> dict[str, ClientOptionsNotice]:
    return {e.routing_key: e.message for e in ctx.emitted if e.exchange == DESKTOP}


async def test_a_site_option_reaches_every_enabled_desktop(ctx, store):
    store.desktops.update(alice=True, bob=True, carol=False)
    reply = await handlers.on_set(ctx, SetClientOption(key="hide_balance", value="yes"))
    assert reply.desktops == 2
    sent = _notices(ctx)
    assert set(sent) == {"user.alice.client_options", "user.bob.client_options"}
    assert sent["user.bob.client_options"].options == {"hide_balance": "true"}
    assert all(e.expiration_ms == handlers.NOTICE_TTL_MS for e in ctx.emitted)
    assert store.option_locks == 1


async def test_a_group_option_reaches_its_members_only(ctx, store):
    store.desktops.update(alice=True, bob=True)
    await _announce(ctx, UserGroupsSet(login="alice", groups=["staff"], revision=1))
    ctx.emitted.clear()
    reply = await handlers.on_set(ctx, SetClientOption(key="title", value="Staff", group="staff"))
    assert reply.desktops == 1
    [(key, notice)] = _notices(ctx).items()
    assert key == "user.alice.client_options" and notice.options == {"title": "Staff"}


@pytest.mark.parametrize(
    ("key", "value", "why"),
    [
        ("colour_scheme", "dark", "unknown client option 'colour_scheme'"),
        ("colour", "red", "#rgb or #rrggbb"),
        ("details_url", "http://example.org/", "https://"),
        ("title", "<b>x</b>", "no <, > or &"),
        ("hide_balance", "maybe", "true or false"),
    ],
)
async def test_a_bad_option_is_refused_and_nothing_is_stored_or_sent(ctx, store, key, value, why):
    store.desktops["alice"] = True
    reply = await handlers.on_set(ctx, SetClientOption(key=key, value=value))
    assert isinstance(reply, ErrorReply) and why in reply.error
    assert store.options == {} and ctx.emitted == []


async def test_unset_sends_what_is_left_and_an_unset_option_is_an_error(ctx, store):
    store.desktops["alice"] = True
    await handlers.on_set(ctx, SetClientOption(key="title", value="A"))
    await handlers.on_set(ctx, SetClientOption(key="colour", value="#ABC"))
    ctx.emitted.clear()
    reply = await handlers.on_unset(ctx, UnsetClientOption(key="title"))
    assert reply.desktops == 1
    assert _notices(ctx)["user.alice.client_options"].options == {"colour": "#abc"}
    again = await handlers.on_unset(ctx, UnsetClientOption(key="title"))
    assert isinstance(again, ErrorReply) and "is not set for the site" in again.error


async def test_every_notice_has_a_higher_revision_than_the_one_before(ctx, store):
    store.desktops["alice"] = True
    await handlers.on_set(ctx, SetClientOption(key="title", value="A"))
    ctx.routing_key, ctx.user_id = "user.alice.hello", "alice"
    await handlers.on_hello(ctx, ClientHello(user="alice"))
    revisions = [e.message.revision for e in ctx.emitted]
    assert revisions == sorted(set(revisions)) and len(revisions) == 2


async def test_an_older_groups_announcement_delivered_late_changes_nothing(ctx, store):
    store.desktops["alice"] = True
    await handlers.on_set(ctx, SetClientOption(key="hide_balance", value="true", group="exams"))
    ctx.emitted.clear()
    await _announce(ctx, UserGroupsSet(login="alice", groups=["exams"], revision=2))
    await _announce(ctx, UserGroupsSet(login="alice", groups=[], revision=1))
    assert await store.client_user_groups("alice") == ["exams"]
    [notice] = _notices(ctx).values()  # only the newer one sent options
    assert notice.options == {"hide_balance": "true"}
    # Groups that set nothing give the same options: nothing is sent.
    ctx.emitted.clear()
    await _announce(ctx, UserGroupsSet(login="alice", groups=["exams", "lab"], revision=3))
    assert ctx.emitted == [] and await store.client_user_groups("alice") == ["exams", "lab"]


async def test_hello_is_answered_with_the_options_of_the_user_who_says_it(ctx, store):
    store.desktops.update(alice=True, bob=False)
    await handlers.on_set(ctx, SetClientOption(key="title", value="Print here"))
    ctx.emitted.clear()
    ctx.routing_key, ctx.user_id = "user.alice.hello", "alice"
    await handlers.on_hello(ctx, ClientHello(user="alice"))
    assert _notices(ctx)["user.alice.client_options"].options == {"title": "Print here"}
    # Someone else's name in the body: refused (the routing key and user_id say alice).
    ctx.emitted.clear()
    await handlers.on_hello(ctx, ClientHello(user="bob"))
    # A disabled or unknown user: nothing, not even a queue made for them.
    ctx.routing_key, ctx.user_id = "user.bob.hello", "bob"
    await handlers.on_hello(ctx, ClientHello(user="bob"))
    ctx.routing_key, ctx.user_id = "user.nobody.hello", "nobody"
    await handlers.on_hello(ctx, ClientHello(user="nobody"))
    assert ctx.emitted == []


def test_a_desktop_saying_hello_too_often_is_dropped_before_any_work(clock):
    hello = ClientHello(user="alice")
    admitted = [handlers.admit_hello("user.alice.hello", hello) for _ in range(8)]
    assert admitted == [True] * 5 + [False] * 3
    assert handlers.admit_hello("user.bob.hello", ClientHello(user="bob"))  # others unaffected
    clock.now += 10  # 0.2 a second: two more
    assert [handlers.admit_hello("user.alice.hello", hello) for _ in range(3)] == [
        True,
        True,
        False,
    ]


async def test_show_gives_every_scope_and_a_users_effective_options(ctx, store):
    await _announce(ctx, UserGroupsSet(login="alice", groups=["staff"], revision=1))
    await handlers.on_set(ctx, SetClientOption(key="title", value="Site"))
    await handlers.on_set(ctx, SetClientOption(key="hide_balance", value="on", group="staff"))
    view = await handlers.on_show(ctx, ShowClientOptions())
    assert view.site == {"title": "Site"} and view.groups == {"staff": {"hide_balance": "true"}}
    assert view.effective is None
    mine = await handlers.on_show(ctx, ShowClientOptions(user="alice"))
    assert mine.user_groups == ["staff"]
    assert mine.effective == {"title": "Site", "hide_balance": "true"}
