"""Native desktop notifications (desktop-notifier), when the desktop has a service for them.

On Linux that is a D-Bus session with `org.freedesktop.Notifications`; without one (a bare
X session, a server, a container), `available()` says no and the client shows its own
message windows instead.
"""

from __future__ import annotations

import asyncio
import logging
import sys

NOTIFICATIONS = "org.freedesktop.Notifications"


async def _linux_service_present(timeout: float) -> bool:
    from dbus_fast import Message
    from dbus_fast.aio import MessageBus

    bus = await asyncio.wait_for(MessageBus().connect(), timeout)
    try:
        reply = await asyncio.wait_for(
            bus.call(
                Message(
                    destination="org.freedesktop.DBus",
                    path="/org/freedesktop/DBus",
                    interface="org.freedesktop.DBus",
                    member="NameHasOwner",
                    signature="s",
                    body=[NOTIFICATIONS],
                )
            ),
            timeout,
        )
        return bool(reply.body and reply.body[0])
    finally:
        bus.disconnect()


class Notifier:
    def __init__(self, enabled: bool = True, app_name: str = "Platen") -> None:
        self.enabled = enabled
        self.app_name = app_name
        self._available: bool | None = None
        self._notifier = None

    async def available(self, timeout: float = 2.0) -> bool:
        if self._available is None:
            self._available = self.enabled and await self._probe(timeout)
        return self._available

    async def _probe(self, timeout: float) -> bool:
        try:
            if sys.platform.startswith("linux"):
                if not await _linux_service_present(timeout):
                    return False
            from desktop_notifier import DesktopNotifier

            # It logs and swallows its own failures; the probe above is what decides.
            logging.getLogger("desktop_notifier").setLevel(logging.CRITICAL)
            self._notifier = DesktopNotifier(app_name=self.app_name)
            return True
        except Exception:
            return False

    async def send(self, title: str, text: str) -> bool:
        """Show a notification; False if it could not be (the caller shows it itself)."""
        if not await self.available():
            return False
        try:
            await asyncio.wait_for(self._notifier.send(title=title, message=text), 5)  # type: ignore[union-attr]
            return True
        except Exception:
            self._available = False  # the service went away: fall back from now on
            return False
