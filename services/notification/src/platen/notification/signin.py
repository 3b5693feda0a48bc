"""Signing a desktop in with the user's directory password (`platen-client --sign-in`).

The client posts login, password and desktop id over HTTPS (`signin_http`). Here: the
failure limits are asked first (`domain.SignInLimiter`), then the directory, by a bind as
the user (`platen.directory.ldap.verify_password`); a user the directory accepts must also
be a Platen user who is enabled. The desktop is recorded (`signed_in_desktops`), and after
that commit its own broker user `<login>~<desktop>` is given a new password and the
login's desktop permissions; that password goes back in the answer and nowhere else. The
user's password is used for the bind and dropped: never stored, logged or put in a
message (a `SecretStr` all the way, shown as `**********`).

Orchestration only, like a handler: the rules are in `domain`, the SQL in `store`, the
broker's side in `broker_identities`.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import structlog

from platen.broker_setup.broker_admin import new_password
from platen.db import checked_transaction
from platen.directory.ldap import DirectoryUnavailable, LdapSettings, Verdict, verify_password
from platen.events.identities import SignInGranted, SignInRefused, SignInRequest
from platen.notification.broker_identities import BrokerIdentities
from platen.notification.domain import (
    MAX_SIGNED_IN_DESKTOPS,
    SignedInDesktop,
    SignInLimiter,
    room_for_desktop,
)
from platen.notification.store import Store

log = structlog.get_logger("notification.signin")

Verifier = Callable[[str, str], Awaitable[Verdict]]
Stores = Callable[[], AbstractAsyncContextManager[Any]]

# Said alike for an unknown login and a wrong password, so that the form does not tell
# a stranger which logins exist; the service's log says which it was.
NOT_ACCEPTED = "the directory did not accept this login and password"


def ldap_verifier(settings: LdapSettings) -> Verifier:
    async def verify(login: str, password: str) -> Verdict:
        # ldap3 blocks: in a thread, so that other sign-ins and deliveries go on.
        return await asyncio.to_thread(verify_password, settings, login, password)

    return verify


class SignIn:
    def __init__(
        self,
        broker: BrokerIdentities,
        *,
        verifier: Verifier | None = None,
        limiter: SignInLimiter | None = None,
        stores: Stores | None = None,
        desktop_url: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_desktops: int = MAX_SIGNED_IN_DESKTOPS,
    ) -> None:
        self.broker = broker
        self.verifier = verifier
        self.limiter = limiter or SignInLimiter()
        self.stores = stores
        self.desktop_url = desktop_url
        self.clock = clock
        self.max_desktops = max_desktops

    @classmethod
    def from_env(cls, broker: BrokerIdentities, pool, env=os.environ) -> SignIn:
        @asynccontextmanager
        async def stores() -> AsyncIterator[Store]:
            async with pool.acquire() as conn, checked_transaction(conn):
                yield Store(conn)

        verifier = ldap_verifier(LdapSettings.from_env(env)) if env.get("PLATEN_LDAP_URL") else None
        limiter = SignInLimiter(
            per_login=int(env.get("PLATEN_SIGNIN_MAX_FAILURES", "5")),
            per_source=int(env.get("PLATEN_SIGNIN_MAX_SOURCE_FAILURES", "20")),
            window=float(env.get("PLATEN_SIGNIN_WINDOW_SECONDS", "300")),
        )
        return cls(
            broker,
            verifier=verifier,
            limiter=limiter,
            stores=stores,
            desktop_url=env.get("PLATEN_DESKTOP_AMQP_URL") or None,
            max_desktops=int(env.get("PLATEN_SIGNIN_MAX_DESKTOPS", str(MAX_SIGNED_IN_DESKTOPS))),
        )

    async def _withdraw(self, login: str, desktop: str) -> None:
        """A new desktop whose credential could not be issued: revoked, so that it takes
        none of the user's places, and whatever the broker made of it is removed (now, or
        by the retries if the broker is away). A desktop signed in before keeps its
        record: it may still hold a working credential."""
        assert self.stores is not None
        async with self.stores() as store:
            record = await store.signed_in_desktop(login, desktop)
            if record is None or record.revoked:
                return
            record.revoke()
            await store.save_signed_in_desktop(record)
        await self.broker.sync_signed_in_desktop(login, desktop)

    async def sign_in(
        self, request: SignInRequest, source: str
    ) -> tuple[int, SignInGranted | SignInRefused]:
        """(HTTP status, answer) for one attempt from address `source`."""
        login, desktop = request.login, request.desktop
        bound = log.bind(user=login, desktop=desktop, source=source)
        if not self.broker.managed or self.verifier is None or self.stores is None:
            bound.warning("sign-in refused: not configured")
            return 503, SignInRefused(
                error="this Platen does not sign desktops in with the directory password"
            )
        wait = self.limiter.retry_after(login, source, self.clock())
        if wait > 0:
            bound.warning("sign-in refused: too many failures", retry_after=round(wait, 1))
            return 429, SignInRefused(
                error=f"too many failed sign-ins: try again in {wait:.0f} s", retry_after=wait
            )
        try:
            verdict = await self.verifier(login, request.password.get_secret_value())
        except DirectoryUnavailable as exc:
            bound.warning("sign-in refused: directory unavailable", error=str(exc))
            return 503, SignInRefused(error="the directory cannot be reached: try again later")
        if verdict is not Verdict.ACCEPTED:
            self.limiter.failed(login, source, self.clock())
            bound.warning("sign-in refused", reason=verdict.value)
            return 403, SignInRefused(error=NOT_ACCEPTED)
        async with self.stores() as store:
            identity = await store.desktop_identity(login, lock=True)
            if identity is None or not identity.enabled:
                # A deleted user was disabled first (the ledger says `user.disabled`).
                why = "has no Platen account" if identity is None else "is disabled in Platen"
                bound.warning("sign-in refused", reason=why)
                return 403, SignInRefused(error=f"{login} {why}")
            signed_in = await store.signed_in_desktops(login)
            if not room_for_desktop(signed_in, desktop, self.max_desktops):
                bound.warning("sign-in refused: too many desktops", limit=self.max_desktops)
                return 409, SignInRefused(
                    error=f"{login} is signed in on {self.max_desktops} desktops, the most"
                    " allowed: ask an administrator to sign one out"
                    " (platenctl user revoke-desktop)"
                )
            again = any(d.desktop == desktop and not d.revoked for d in signed_in)
            record = SignedInDesktop(login, desktop, datetime.now(UTC), source)
            await store.save_signed_in_desktop(record)
        password = new_password()
        try:
            await self.broker.issue_signed_in_desktop(login, desktop, password)
        except Exception as exc:
            bound.error("sign-in failed: broker", error=repr(exc))
            if not again:
                await self._withdraw(login, desktop)
            return 503, SignInRefused(error="the credential could not be issued: try again")
        bound.info("desktop signed in", broker_user=record.username)  # never a password
        return 200, SignInGranted(
            login=login,
            desktop=desktop,
            username=record.username,
            password=password,
            url=self.desktop_url,
        )
