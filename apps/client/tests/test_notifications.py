"""Native notifications over a real D-Bus session bus, with and without a notification
service on it. The service here is a small stand-in for a desktop's notification daemon
(org.freedesktop.Notifications), registered on a private dbus-daemon."""

import asyncio
import subprocess
from decimal import Decimal
from typing import Annotated

import pytest
from dbus_fast.aio import MessageBus
from dbus_fast.annotations import DBusSignature
from dbus_fast.service import ServiceInterface, method, signal

from platen.client.notifier import NOTIFICATIONS, Notifier

Str = Annotated[str, DBusSignature("s")]
U32 = Annotated[int, DBusSignature("u")]
I32 = Annotated[int, DBusSignature("i")]
Strs = Annotated[list[str], DBusSignature("as")]
Hints = Annotated[dict, DBusSignature("a{sv}")]


def sig(signature: str):
    return Annotated[list, DBusSignature(signature)]


class NotificationDaemon(ServiceInterface):
    def __init__(self) -> None:
        super().__init__(NOTIFICATIONS)
        self.shown: list[tuple[str, str]] = []

    @method("Notify")
    def notify(
        self,
        app_name: Str,
        replaces_id: U32,
        app_icon: Str,
        summary: Str,
        body: Str,
        actions: Strs,
        hints: Hints,
        expire_timeout: I32,
    ) -> U32:
        self.shown.append((summary, body))
        return len(self.shown)

    @method("GetCapabilities")
    def capabilities(self) -> Strs:
        return ["body", "actions"]

    @method("GetServerInformation")
    def server_information(self) -> sig("ssss"):
        return ["test-daemon", "platen", "1", "1.2"]

    @method("CloseNotification")
    def close(self, nid: U32) -> None:
        pass

    @signal("NotificationClosed")
    def closed(self, nid: U32, reason: U32) -> sig("uu"):
        return [nid, reason]

    @signal("ActionInvoked")
    def action(self, nid: U32, key: Str) -> sig("us"):
        return [nid, key]


@pytest.fixture
def session_bus(monkeypatch):
    proc = subprocess.Popen(
        ["dbus-daemon", "--session", "--nofork", "--nopidfile", "--print-address=1"],
        stdout=subprocess.PIPE,
        text=True,
    )
    address = proc.stdout.readline().strip()
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", address)
    yield address
    proc.terminate()
    proc.wait(5)


async def test_no_notification_service_on_the_bus_means_none(session_bus):
    notifier = Notifier()
    assert await notifier.available() is False
    assert await notifier.send("Low credit", "top up") is False


async def test_notifications_go_to_the_desktops_service(session_bus):
    bus = await MessageBus(bus_address=session_bus).connect()
    daemon = NotificationDaemon()
    bus.export("/org/freedesktop/Notifications", daemon)
    await bus.request_name(NOTIFICATIONS)
    try:
        notifier = Notifier()
        assert await notifier.available() is True
        assert await notifier.send("Job printed", "3 pages, 0.30") is True
        for _ in range(50):
            if daemon.shown:
                break
            await asyncio.sleep(0.05)
        assert daemon.shown == [("Job printed", "3 pages, 0.30")]
        assert await Notifier(enabled=False).available() is False  # --disable-notifications
    finally:
        bus.disconnect()


async def test_the_gui_uses_the_service_instead_of_its_own_windows(session_bus, display):
    from platen.client.app import ClientApp
    from platen.client.config import Options
    from platen.client.contract import LowBalanceNotice
    from platen.client.model import ClientModel
    from platen.client.tkview import TkView

    bus = await MessageBus(bus_address=session_bus).connect()
    daemon = NotificationDaemon()
    bus.export("/org/freedesktop/Notifications", daemon)
    await bus.request_name(NOTIFICATIONS)
    view = TkView(Options(login="bob", url="amqp://localhost/"))
    try:
        app = ClientApp(ClientModel("bob"), view)
        view.app = app
        low = LowBalanceNotice(balance=Decimal("0.50"), available=Decimal("0.50"), threshold=1)
        app.apply(app.model.receive(low))
        for _ in range(100):
            view.root.update()
            if daemon.shown:
                break
            await asyncio.sleep(0.05)
        assert daemon.shown and daemon.shown[0][0] == "Low credit"
        assert view.messages == []
    finally:
        view.root.destroy()
        bus.disconnect()
