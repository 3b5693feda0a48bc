"""The tray icon, for real: a real system tray (trayer) on the private X display embeds
the client's icon; its balance, tooltip and menu; the balance window where no tray runs."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import uuid
from decimal import Decimal
from types import SimpleNamespace

from PIL import ImageGrab

from platen.client import tkview
from platen.client.app import ClientApp
from platen.client.config import Options
from platen.client.contract import BalanceNotice, ClientOptionsNotice, PrintedNotice
from platen.client.model import ClientModel
from platen.client.recent import Favourites
from platen.client.tkview import TkView
from platen.client.xembed import screen_number
from platen.testing.xvfb import descendants, screenshot, tray_host, window_tree

DEADLINE = 30.0  # seconds; every wait below is for a condition, this only bounds it


async def until(view, predicate, what: str):
    """Let Tk and the view's loop run until `predicate()` holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while not predicate():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        view.root.update()
        await asyncio.sleep(0.05)


def in_tray(display: str, window: int) -> bool:
    """Whether the X server has `window` inside trayer's panel (embedded, not on the root)."""
    tree = window_tree(display)
    panels = [ident for _, ident, text in tree if '("panel" "trayer")' in text]
    return any(window in descendants(tree, panel) for panel in panels)


def window_stats(display: str, window: int) -> dict[str, str]:
    """What `xwininfo -stats` says of `window` (its place on the screen, its map state)."""
    out = subprocess.run(
        ["xwininfo", "-id", hex(window), "-stats"],
        env={**os.environ, "DISPLAY": display},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    pairs = (line.strip().split(":", 1) for line in out.splitlines() if ":" in line)
    return {k.strip(): v.strip() for k, v in pairs}


def client(options: Options) -> tuple[TkView, ClientApp]:
    view = TkView(options)
    # No transport: this test answers no prompt.
    app = ClientApp(ClientModel(options.login, favourites=Favourites()), view)
    view.app = app
    return view, app


async def deliver(view, app, message) -> None:
    async def ack() -> None:
        pass

    await app.on_delivery(SimpleNamespace(message=message, ack=ack))
    view.root.update()


def close_button(view) -> None:
    """What the window manager's close button does: the window's WM_DELETE_WINDOW."""
    view.root.tk.call(view.root.protocol("WM_DELETE_WINDOW"))


async def test_the_tray_icon_shows_the_balance_and_its_menu_works(
    display, shots, caplog, monkeypatch
):
    caplog.set_level(logging.INFO, logger="platen.client")
    # The client looks for a tray once a second; the test need not wait that long.
    monkeypatch.setattr(tkview, "TRAY_POLL_SECONDS", 0.1)
    options = Options(
        login="bob", url="amqp://localhost/", disable_notifications=True, window_position="top-left"
    )
    view, app = client(options)
    running = asyncio.create_task(view.run(app))
    noquit = noquit_run = None
    try:
        # No tray on this desktop: the balance window, and the log says why.
        assert not view.docked and view.root.state() == "normal"
        # A window that is gone (a tray that ended meanwhile) is an X error, which Xlib's
        # default handler would answer by ending the process: here it is only "gone".
        gone = 0x1FFFFFF
        assert view.tray.tray.parent(gone) == (0, 0)
        view.tray.tray.hide(gone)
        view.tray.tray.resize(gone, (10, 10))
        assert "no system tray on this desktop: showing the balance window instead" in (caplog.text)
        with tray_host(display):
            # A tray that starts after the client (log-in races the panel) gets the icon.
            await until(view, lambda: view.docked and view.tray.embedded, "the icon docked")
            await until(view, lambda: in_tray(display, view.tray.window), "the X tree")
            assert view.root.state() == "withdrawn"
            await deliver(
                view, app, BalanceNotice(balance=Decimal("12.40"), available=Decimal("11.90"))
            )
            assert view.tray.label.cget("text") == "12.40"
            assert view.tray.tip_text.splitlines() == [
                "Platen - bob",
                "Balance 12.40",
                "available 11.90",
                "connecting…",
            ]
            await until(view, lambda: view.tray.icon.winfo_ismapped(), "the icon drawn")
            picture = ImageGrab.grab(bbox=tray_box(display, view), xdisplay=display)
            shots.mkdir(parents=True, exist_ok=True)
            picture.save(shots / "tray-icon.png")
            assert len(picture.getcolors(1 << 16) or []) > 5  # the glyph and the figures

            # Hovering shows the tooltip; a click opens the menu at the pointer.
            view.tray.label.event_generate("<Enter>")
            assert view.tray.tip.children["text"].cget("text") == view.tray.tip_text
            view.tray.label.event_generate("<Leave>")
            assert view.tray.tip is None
            left, _top, right, bottom = tray_box(display, view)
            view.tray.label.event_generate("<Button-1>", x=4, y=4, rootx=left, rooty=bottom)
            await until(view, lambda: view.tray.menu.winfo_ismapped(), "the menu posted")
            for _ in range(5):  # let Tk draw it before the picture
                view.root.update()
                await asyncio.sleep(0.02)
            # The menu: the balance window, recent jobs, quit.
            assert view.tray.entries() == ["Balance window", "Recent jobs", "Quit Platen"]
            menu = view.tray.menu
            x, y = menu.winfo_rootx(), menu.winfo_rooty()
            screen = view.root.winfo_screenwidth()
            edges = (min(x, left) - 4, 0, min(max(x + menu.winfo_width(), right) + 4, screen))
            picture = ImageGrab.grab(bbox=(*edges, y + menu.winfo_height()), xdisplay=display)
            picture.save(shots / "tray-menu.png")
            view.tray.menu.unpost()
            view.tray.choose("Balance window")
            assert view.root.state() == "normal"
            # Closed with the tray there, the window goes; the client stays.
            close_button(view)
            await until(view, lambda: view.root.state() == "withdrawn", "the window closed")
            assert not running.done()

            job = {"job_id": uuid.uuid4(), "document_name": "notes.pdf", "printer": "lab-1"}
            money = {"cost": Decimal("0.40"), "balance": Decimal("12.00")}
            await deliver(view, app, PrintedNotice(**job, sides=4, copies=1, **money))
            view.tray.choose("Recent jobs")
            await until(view, lambda: view.recent_window.winfo_ismapped(), "recent jobs")
            assert view.recent_window.rows() == [("notes.pdf", "lab-1", "printed", "0.40")]
            screenshot(display, view.recent_window, shots / "recent-jobs.png")

            # The server hides the balance and forbids quitting: neither in the tray.
            hidden = {"hide_balance": "true", "allow_quit": "false"}
            await deliver(view, app, ClientOptionsNotice(revision=1, options=hidden))
            assert view.tray.label.cget("text") == ""
            assert "12.40" not in view.tray.tip_text and "Balance" not in view.tray.tip_text
            assert view.tray.entries() == ["Balance window", "Recent jobs"]
            assert view.tray.menu.entrycget(0, "state") == "disabled"
            view.quit()
            await until(view, lambda: view.root.state() == "withdrawn", "no window")
            assert not running.done()
            # Allowed again: the balance and the quit entry come back.
            await deliver(view, app, ClientOptionsNotice(revision=2, options={}))
            assert view.tray.label.cget("text") == "12.40"
            assert view.tray.entries()[-1] == "Quit Platen"

            # --noquit on this desktop: no quit in the menu, and closing the window
            # leaves that client running too.
            noquit, noquit_app = client(Options(login="bob", url="amqp://localhost/", noquit=True))
            noquit_run = asyncio.create_task(noquit.run(noquit_app))
            await until(noquit, lambda: noquit.docked and noquit.tray.embedded, "second icon")
            assert noquit.tray.entries() == ["Balance window", "Recent jobs"]
            noquit.tray.choose("Balance window")
            close_button(noquit)
            noquit.quit()
            await until(noquit, lambda: noquit.root.state() == "withdrawn", "closed")
            assert not noquit_run.done()
        # The tray ended: its icon does not linger on the screen, the window comes back.
        await until(view, lambda: not view.docked, "the tray gone")
        assert view.root.state() == "normal"
        assert window_stats(display, view.tray.window)["Map State"] == "IsUnMapped"
        assert "the system tray went away: showing the balance window instead" in caplog.text
        # A tray started again (the panel restarted) gets the icon back.
        with tray_host(display):
            await until(view, lambda: view.docked and view.tray.embedded, "docked again")
            await until(view, lambda: in_tray(display, view.tray.window), "the X tree again")
            assert view.root.state() == "withdrawn"
            view.tray.choose("Quit Platen")
            await asyncio.wait_for(running, DEADLINE)
    finally:
        # Whatever the test got to, both loops end (quitting may be forbidden by now).
        view._closed = True
        await asyncio.wait_for(running, DEADLINE)
        if noquit_run is not None:
            noquit._closed = True
            await asyncio.wait_for(noquit_run, DEADLINE)


def tray_box(display: str, view) -> tuple[int, int, int, int]:
    """The icon's place on the screen, as the X server has it (Tk still believes it is in
    its own off-screen frame)."""
    stats = window_stats(display, view.tray.window)
    x, y = int(stats["Absolute upper-left X"]), int(stats["Absolute upper-left Y"])
    return x, y, x + int(stats["Width"]), y + int(stats["Height"])


def test_the_tray_is_looked_for_on_the_screen_the_display_names():
    assert screen_number(":77.0") == 0
    assert screen_number("print-host.example.org:0.1") == 1
    assert screen_number("print-host.example.org:0") == 0
    assert screen_number("") == 0
