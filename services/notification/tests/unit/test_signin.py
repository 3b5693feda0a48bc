"""Signing a desktop in with the directory password, over fakes (store, management API,
directory): who gets a credential, what is refused and said, the failure limits per login
and per source, each desktop revoked alone, and a password that shows in no repr or log."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
import structlog

from platen.broker_setup import permissions
from platen.directory.ldap import DirectoryUnavailable, Verdict
from platen.events.accounts import UserAdded, UserDisabled, UserEnabled
from platen.events.identities import (
    DesktopList,
    ListDesktops,
    RevokeDesktop,
    SignInGranted,
    SignInRefused,
    SignInRequest,
)
from platen.events.system import ErrorReply
from platen.notification import broker_identities
from platen.notification.domain import Sender, SignedInDesktop, SignInLimiter, sender_problem
from platen.notification.identities import IdentityHandlers, on_list_desktops
from platen.notification.signin import NOT_ACCEPTED, SignIn

PASSWORD = "correct horse battery"


class Directory:
    """The directory's answers: `passwords` by login; `down` makes it unreachable."""

    def __init__(self) -> None:
        self.passwords = {"ann": PASSWORD, "bob": "bobs-pw", "eve": "eves-pw"}
        self.down = False
        self.asked: list[str] = []

    async def __call__(self, login: str, password: str) -> Verdict:
        self.asked.append(login)
        if self.down:
            raise DirectoryUnavailable("ldap://dir: ConnectionRefusedError")
        if login not in self.passwords:
            return Verdict.UNKNOWN_USER
        return Verdict.ACCEPTED if self.passwords[login] == password else Verdict.WRONG_PASSWORD


@pytest.fixture
def directory() -> Directory:
    return Directory()


@pytest.fixture
def identities(broker) -> IdentityHandlers:
    return IdentityHandlers(broker)


@pytest.fixture
async def known(ctx, identities):
    """ann and bob are Platen users (the ledger announced them); eve is only in the
    directory."""
    for login in ("ann", "bob"):
        await identities.on_user_added(ctx, UserAdded(login=login))
    await ctx.commit()


@pytest.fixture
def signin(broker, store, directory, clock) -> SignIn:
    return SignIn(
        broker,
        verifier=directory,
        limiter=SignInLimiter(per_login=3, per_source=5, window=60),
        stores=store.session,
        desktop_url="amqps://broker.example.org:5671/platen",
        clock=clock,
    )


def request(login="ann", password=PASSWORD, desktop="PC-1") -> SignInRequest:
    return SignInRequest(login=login, password=password, desktop=desktop)


async def test_a_user_signs_in_and_their_desktop_gets_a_broker_user_of_its_own(
    known, signin, store, admin, queues
):
    status, granted = await signin.sign_in(request(), "10.0.0.5")
    assert status == 200 and isinstance(granted, SignInGranted)
    assert (granted.login, granted.desktop, granted.username) == ("ann", "pc-1", "ann~pc-1")
    assert granted.url == "amqps://broker.example.org:5671/platen"
    # The broker holds the issued password; the desktop may do what ann's own user may,
    # but reads a queue of its own (bound to all of ann's keys), declared before it connects.
    assert admin.passwords["ann~pc-1"] == granted.password.get_secret_value()
    assert admin.granted["ann~pc-1"] == permissions.desktop_user("ann~pc-1")
    assert admin.granted["ann~pc-1"].read == r"^(desktop\.ann:pc\-1)$"
    assert {"ann", "ann~pc-1"} <= queues.declared
    desktop = store.signed_in[("ann", "pc-1")]
    assert (desktop.source, desktop.revoked) == ("10.0.0.5", False)
    # Another desktop gets another user and password; the first keeps working.
    _, other = await signin.sign_in(request(desktop="laptop"), "10.0.0.6")
    assert other.username == "ann~laptop" and other.password != granted.password
    assert admin.passwords["ann~pc-1"] == granted.password.get_secret_value()
    assert {"ann~pc-1", "ann~laptop"} <= queues.declared


async def test_wrong_password_unknown_user_directory_down_disabled_or_not_in_platen_issue_nothing(
    known, signin, ctx, identities, directory, admin, store
):
    calls = len(admin.calls)
    refusals = {
        "wrong": await signin.sign_in(request(password="guess"), "10.0.0.5"),
        "unknown": await signin.sign_in(request(login="zed"), "10.0.0.5"),
        # In the directory but not (yet) a Platen user: nothing to sign in to.
        "not in platen": await signin.sign_in(request(login="eve", password="eves-pw"), "10.0.0.5"),
    }
    directory.down = True
    refusals["down"] = await signin.sign_in(request(), "10.0.0.5")
    directory.down = False
    await identities.on_user_disabled(ctx, UserDisabled(login="bob"))
    await ctx.commit()
    calls = len(admin.calls)
    refusals["disabled"] = await signin.sign_in(
        request(login="bob", password="bobs-pw"), "10.0.0.7"
    )
    assert {k: (s, r.error) for k, (s, r) in refusals.items()} == {
        # Alike, so that the form does not tell which logins exist.
        "wrong": (403, NOT_ACCEPTED),
        "unknown": (403, NOT_ACCEPTED),
        "not in platen": (403, "eve has no Platen account"),
        "down": (503, "the directory cannot be reached: try again later"),
        "disabled": (403, "bob is disabled in Platen"),
    }
    assert all(isinstance(r, SignInRefused) for _, r in refusals.values())
    assert store.signed_in == {}
    assert len(admin.calls) == calls  # nothing asked of the broker for any of them


async def test_one_user_may_not_sign_in_desktops_without_end(
    known, signin, ctx, identities, directory, admin, store, queues
):
    """Each desktop is a broker user and a queue that gets a copy of every message for the
    user: past the cap, a new desktop is refused with what to do, and nothing is issued.
    A desktop already signed in may sign in again, and a revoked one frees its place. The
    right password was given, so the refusal does not count as a failure."""
    signin.max_desktops = 2
    assert (await signin.sign_in(request(desktop="pc-1"), "10.0.0.5"))[0] == 200
    assert (await signin.sign_in(request(desktop="pc-2"), "10.0.0.5"))[0] == 200
    calls = len(admin.calls)
    status, refused = await signin.sign_in(request(desktop="pc-3"), "10.0.0.5")
    assert (status, refused.error) == (
        409,
        "ann is signed in on 2 desktops, the most allowed: ask an administrator to sign one"
        " out (platenctl user revoke-desktop)",
    )
    assert len(admin.calls) == calls and "ann~pc-3" not in admin.passwords
    assert set(store.signed_in) == {("ann", "pc-1"), ("ann", "pc-2")}
    assert "ann~pc-3" not in queues.declared
    assert signin.limiter.retry_after("ann", "10.0.0.5", signin.clock()) == 0
    # The same desktop again: a new credential, not a third desktop.
    again, granted = await signin.sign_in(request(desktop="PC-2"), "10.0.0.6")
    assert again == 200 and granted.username == "ann~pc-2"
    # Another user's desktops are counted apart.
    assert (await signin.sign_in(request(login="bob", password="bobs-pw"), "10.0.0.7"))[0] == 200
    # Signed out by the administrator, pc-1's place is free for pc-3.
    await identities.on_revoke_desktop(ctx, RevokeDesktop(login="ann", desktop="pc-1"))
    await ctx.commit()
    assert (await signin.sign_in(request(desktop="pc-3"), "10.0.0.5"))[0] == 200


async def test_failures_are_limited_per_login_and_per_source(known, signin, directory, clock):
    # Three wrong passwords for ann, from three addresses: ann's own password is then not
    # even checked until the first failure leaves the window.
    for n in range(3):
        status, _ = await signin.sign_in(request(password=f"guess{n}"), f"10.0.1.{n}")
        assert status == 403
        clock.now += 1
    asked = len(directory.asked)
    status, refused = await signin.sign_in(request(), "10.0.9.9")
    assert status == 429 and refused.retry_after == pytest.approx(57)
    assert "too many failed sign-ins" in refused.error and len(directory.asked) == asked
    # bob is not affected by ann's failures.
    assert (await signin.sign_in(request(login="bob", password="bobs-pw"), "10.0.9.9"))[0] == 200
    clock.now += 58
    assert (await signin.sign_in(request(), "10.0.9.9"))[0] == 200

    # One address guessing many logins' passwords is stopped after five failures.
    for n in range(5):
        assert (await signin.sign_in(request(login=f"u{n}", password="x"), "10.6.6.6"))[0] == 403
    status, _ = await signin.sign_in(request(login="bob", password="bobs-pw"), "10.6.6.6")
    assert status == 429
    # From elsewhere bob still signs in.
    assert (await signin.sign_in(request(login="bob", password="bobs-pw"), "10.0.0.8"))[0] == 200


def test_the_limiter_stays_bounded_under_a_flood_of_made_up_logins():
    limiter = SignInLimiter(per_login=2, per_source=10**9, window=60, max_keys=100)
    for n in range(1000):
        limiter.failed(f"user{n}", "10.0.0.1", 0.0)
    assert len(limiter._failures) <= 100


def test_a_flood_of_made_up_logins_does_not_reset_a_guessed_users_count():
    """The attacker locks out their own guessing of `victim`, then floods made-up logins
    from many addresses to push the victim's count out of the bounded table."""
    limiter = SignInLimiter(per_login=3, per_source=10**9, window=60, max_keys=100)
    for n in range(3):
        limiter.failed("victim", f"10.1.0.{n}", float(n))
    assert limiter.retry_after("victim", "10.9.9.9", 3.0) > 0
    for n in range(1000):
        limiter.failed(f"made-up-{n}", f"10.2.{n // 250}.{n % 250}", 4.0 + n / 1000)
        assert len(limiter._failures) <= 100
    assert limiter.retry_after("victim", "10.9.9.9", 5.0) > 0
    # Counts that left the window are the first to go, and the victim's ends on time.
    assert limiter.retry_after("victim", "10.9.9.9", 61.0) == 0


async def test_the_administrator_lists_and_revokes_one_desktop(
    known, signin, ctx, identities, admin, store, queues
):
    await signin.sign_in(request(desktop="pc-1"), "10.0.0.5")
    await signin.sign_in(request(desktop="pc-2"), "10.0.0.6")
    listed = await on_list_desktops(ctx, ListDesktops(login="ann"))
    assert [(d.desktop, d.username, d.source) for d in listed.desktops] == [
        ("pc-1", "ann~pc-1", "10.0.0.5"),
        ("pc-2", "ann~pc-2", "10.0.0.6"),
    ]
    admin.connections["ann~pc-1"] = 1
    left = await identities.on_revoke_desktop(ctx, RevokeDesktop(login="ann", desktop="PC-1"))
    assert isinstance(left, DesktopList) and [d.desktop for d in left.desktops] == ["pc-2"]
    assert "ann~pc-1" in admin.passwords  # nothing on the broker before the commit
    await ctx.commit()
    assert "ann~pc-1" not in admin.passwords and admin.connections == {}
    assert admin.calls[-2:] == [("delete_user", "ann~pc-1"), ("disconnect", "ann~pc-1")]
    # Its queue goes with it (nothing piles up for a desktop that can never read it).
    assert queues.deleted == ["ann~pc-1"] and "ann~pc-2" in queues.declared
    # The other desktop and ann's own broker user are untouched; the record is gone.
    assert "ann~pc-2" in admin.passwords and "ann" in admin.granted
    assert set(store.signed_in) == {("ann", "pc-2")}
    again = await identities.on_revoke_desktop(ctx, RevokeDesktop(login="ann", desktop="pc-1"))
    assert isinstance(again, ErrorReply) and "no desktop 'pc-1'" in again.error


async def test_disabling_a_user_signs_out_every_desktop_of_theirs_and_enabling_restores_them(
    known, signin, ctx, identities, admin
):
    await signin.sign_in(request(desktop="pc-1"), "10.0.0.5")
    await identities.on_user_disabled(ctx, UserDisabled(login="ann"))
    await ctx.commit()
    assert "ann~pc-1" not in admin.granted and ("disconnect", "ann~pc-1") in admin.calls
    await identities.on_user_enabled(ctx, UserEnabled(login="ann"))
    await ctx.commit()
    assert admin.granted["ann~pc-1"] == permissions.desktop_user("ann~pc-1")


async def test_a_revocation_the_broker_refused_is_done_at_the_next_start(
    known, signin, ctx, identities, admin, store, broker
):
    await signin.sign_in(request(desktop="pc-1"), "10.0.0.5")
    admin.fail = 1
    await identities.on_revoke_desktop(ctx, RevokeDesktop(login="ann", desktop="pc-1"))
    await ctx.commit()
    assert store.signed_in[("ann", "pc-1")].revoked and "ann~pc-1" in admin.passwords
    await broker.sync_all()
    assert "ann~pc-1" not in admin.passwords and store.signed_in == {}


def test_a_signed_in_desktop_speaks_for_its_login_and_no_other():
    assert sender_problem(Sender("user.ann.answer", "ann~pc-1"), "ann") is None
    assert "sent by broker user bob~pc-1" in sender_problem(
        Sender("user.ann.answer", "bob~pc-1"), "ann"
    )


async def test_the_password_is_in_no_repr_and_no_log_line(known, signin, directory):
    secret = "s3cret-that-must-not-leak"
    directory.passwords["ann"] = secret
    req = request(password=secret)
    assert all(secret not in text for text in (repr(req), str(req), req.model_dump_json()))
    with structlog.testing.capture_logs() as logs:
        _, granted = await signin.sign_in(req, "10.0.0.5")
        await signin.sign_in(request(password=secret + "x"), "10.0.0.5")
    issued = granted.password.get_secret_value()
    assert issued not in repr(granted) and issued not in granted.model_dump_json()
    text = repr(logs)
    assert logs and secret not in text and issued not in text


async def test_a_desktop_revoked_while_its_sign_in_was_finishing_gets_no_broker_user(
    known, signin, ctx, identities, admin, store, broker, monkeypatch
):
    # The revocation lands between the sign-in's commit and its broker step.
    issue = broker.issue_signed_in_desktop

    async def revoked_first(login, desktop, password):
        await identities.on_revoke_desktop(ctx, RevokeDesktop(login=login, desktop=desktop))
        await ctx.commit()
        await issue(login, desktop, password)

    monkeypatch.setattr(broker, "issue_signed_in_desktop", revoked_first)
    status, refused = await signin.sign_in(request(), "10.0.0.5")
    assert status == 503 and "could not be issued" in refused.error
    assert "ann~pc-1" not in admin.passwords and store.signed_in == {}


async def test_a_new_desktop_whose_credential_could_not_be_issued_takes_no_place(
    known, signin, admin, store
):
    signin.max_desktops = 2
    assert (await signin.sign_in(request(desktop="pc-1"), "10.0.0.5"))[0] == 200
    admin.fail = 1  # the broker refuses pc-2's password
    status, refused = await signin.sign_in(request(desktop="pc-2"), "10.0.0.5")
    assert status == 503 and "could not be issued" in refused.error
    # Withdrawn: what the broker made of it removed, the record gone with it.
    assert "ann~pc-2" not in admin.passwords and ("ann", "pc-2") not in store.signed_in
    assert (await signin.sign_in(request(desktop="pc-3"), "10.0.0.5"))[0] == 200
    # A desktop signed in before keeps its record when its new credential fails: its
    # old one may still work, and only an administrator signs it out.
    admin.fail = 1
    assert (await signin.sign_in(request(desktop="pc-1"), "10.0.0.6"))[0] == 503
    assert not store.signed_in[("ann", "pc-1")].revoked


async def test_a_desktop_signed_in_before_the_upgrade_gets_its_queue_at_start_up(
    known, signin, store, broker, admin, queues
):
    # Signed in when every desktop of a user read `desktop.ann`: a broker user with the
    # login's rights, and no queue of its own.
    await signin.sign_in(request(desktop="pc-1"), "10.0.0.5")
    queues.declared.discard("ann~pc-1")
    admin.granted["ann~pc-1"] = permissions.desktop_user("ann")
    await broker.sync_all()
    assert "ann~pc-1" in queues.declared
    assert admin.granted["ann~pc-1"] == permissions.desktop_user("ann~pc-1")


async def test_a_sign_in_that_stopped_before_the_broker_step_does_not_stop_the_service(
    known, store, broker, admin
):
    await store.save_signed_in_desktop(SignedInDesktop("ann", "pc-9", datetime.now(UTC)))
    await broker.sync_all()  # no grant to a broker user that does not exist
    assert "ann~pc-9" not in admin.granted


async def test_a_revocation_during_the_start_up_reconciliation_is_not_undone(
    known, signin, ctx, identities, admin, store, broker, queues
):
    await signin.sign_in(request(desktop="pc-1"), "10.0.0.5")
    admin.granted["ann~pc-1"] = permissions.desktop_user("ann")  # as before the upgrade
    # The reconciliation stops in the middle of granting ann's desktop its rights...
    gate, reached = asyncio.Event(), asyncio.Event()
    grant = admin.grant

    async def slow_grant(name, perms):
        if name == "ann~pc-1" and not gate.is_set():
            reached.set()
            await gate.wait()
        await grant(name, perms)

    admin.grant = slow_grant
    reconciling = asyncio.create_task(broker.sync_all())
    await asyncio.wait_for(reached.wait(), 10)
    # ...when the administrator revokes that desktop (committed; its broker step waits).
    await identities.on_revoke_desktop(ctx, RevokeDesktop(login="ann", desktop="pc-1"))
    revoking = asyncio.create_task(ctx.commit())
    await asyncio.sleep(0)
    gate.set()
    await asyncio.wait_for(asyncio.gather(reconciling, revoking), 10)
    # Revoked last: no broker user, no rights, no queue, no record.
    assert "ann~pc-1" not in admin.passwords and "ann~pc-1" not in admin.granted
    assert "ann~pc-1" not in queues.declared and queues.deleted == ["ann~pc-1"]
    assert store.signed_in == {}


async def test_the_start_up_reconciliation_deletes_a_desktop_broker_user_no_record_stands_for(
    known, signin, admin, store, broker, queues
):
    """A sign-in that raced a revocation on another replica can leave a broker user with
    rights and no record: nobody can list or revoke it. The next start deletes it, with
    its queue; a recorded desktop, and another user's, keep theirs."""
    await signin.sign_in(request(desktop="pc-1"), "10.0.0.5")
    await signin.sign_in(request(login="bob", password="bobs-pw", desktop="pc-9"), "10.0.0.5")
    admin.passwords["ann~ghost"] = "issued to a desktop that was signed out"
    admin.granted["ann~ghost"] = permissions.desktop_user("ann~ghost")
    queues.declared.add("ann~ghost")
    await broker.sync_all()
    assert "ann~ghost" not in admin.passwords and "ann~ghost" not in admin.granted
    assert "ann~ghost" in queues.deleted and "ann~ghost" not in queues.declared
    for kept in ("ann~pc-1", "bob~pc-9"):
        assert admin.granted[kept] == permissions.desktop_user(kept)
        assert kept in queues.declared


async def test_the_start_up_reconciliation_does_several_users_at_once_and_no_more(
    store, admin, queues, broker, monkeypatch
):
    monkeypatch.setattr(broker_identities, "RECONCILE_CONCURRENCY", 4)
    store.desktops.update({f"u{n}": True for n in range(20)})
    busy = most = 0
    grant = admin.grant

    async def counted_grant(name, perms):
        nonlocal busy, most
        busy += 1
        most = max(most, busy)
        await asyncio.sleep(0)  # every worker gets to its grant before any ends
        await grant(name, perms)
        busy -= 1

    admin.grant = counted_grant
    with structlog.testing.capture_logs() as logs:
        await broker.sync_all()
    assert most == 4 and broker.unreconciled == 0
    assert all(admin.granted[f"u{n}"] == permissions.desktop_user(f"u{n}") for n in range(20))
    done = [e for e in logs if e["event"] == "identities reconciled"]
    assert done and done[0]["users"] == 20 and done[0]["failed"] == 0 and "seconds" in done[0]


async def test_a_restart_writes_nothing_to_the_broker_that_is_right_already(
    known, signin, store, admin, broker, queues
):
    await signin.sign_in(request(desktop="pc-1"), "10.0.0.5")
    await broker.sync_all()  # the first start after an upgrade may write
    admin.calls.clear()
    await broker.sync_all()
    assert admin.calls == [("snapshot",)]  # one read, no write
    assert {"ann", "bob", "ann~pc-1"} <= queues.declared
    # What differs is written: a right taken away behind Platen's back is given back.
    admin.granted["ann~pc-1"] = permissions.desktop_user("ann")
    admin.calls.clear()
    await broker.sync_all()
    assert admin.calls == [("snapshot",), ("grant", "ann~pc-1")]
    assert admin.granted["ann~pc-1"] == permissions.desktop_user("ann~pc-1")
