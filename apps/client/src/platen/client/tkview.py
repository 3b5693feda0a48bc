"""The Tk GUI: a tray icon with the balance (or, where the desktop has no system tray, a
small balance window at a corner of the screen), a dialog per prompt, native
notifications (or message windows when the desktop has none).

Tk runs in the asyncio thread: `run` lets Tk handle its events every few milliseconds,
so no dialog ever blocks the broker connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tkinter as tk
import uuid
import webbrowser
from tkinter import ttk

from platen.client.config import Options
from platen.client.contract import JobPrompt
from platen.client.i18n import _
from platen.client.model import Choice, Notify, ShowBalance, UnknownPrompt
from platen.client.notifier import Notifier
from platen.client.serveroptions import Effective, effective
from platen.client.tkdialogs import AccountDialog, MessageWindow, PromptDialog
from platen.client.wire import Message

log = logging.getLogger("platen.client")
FRAME_SECONDS = 0.05  # 20 times a second: prompt enough for a person, cheap when idle
TRAY_POLL_SECONDS = 1.0  # how soon a tray that starts or ends is noticed
MARGIN = 16


def corner_geometry(position, screen: tuple[int, int], size: tuple[int, int]) -> str:
    """The `+X+Y` that puts a window of `size` at `position` (a corner name or X,Y)."""
    if isinstance(position, tuple):
        return f"+{position[0]}+{position[1]}"
    (sw, sh), (w, h) = screen, size
    x = MARGIN if position.endswith("left") else sw - w - MARGIN
    y = MARGIN if position.startswith("top") else sh - h - MARGIN - 40  # above a task bar
    return f"+{max(0, x)}+{max(0, y)}"


class TkView:
    def __init__(self, options: Options, notifier: Notifier | None = None) -> None:
        self.options = options
        self.notifier = notifier or Notifier(enabled=not options.disable_notifications)
        self.root = tk.Tk(className="Platen")
        self.root.title(f"Platen - {options.login}")
        self.root.resizable(False, False)
        self.root.protocol("WM_DELETE_WINDOW", self.close_window)
        frame = ttk.Frame(self.root, padding=10, name="balance_frame")
        frame.pack(fill="both", expand=True)
        ttk.Label(frame, text=_("Balance"), name="caption").pack(anchor="w")
        self.balance = ttk.Label(
            frame, text="…", font=("TkDefaultFont", 16, "bold"), name="balance"
        )
        self.balance.pack(anchor="w")
        self.available = ttk.Label(frame, text="", name="available")
        self.available.pack(anchor="w")
        self.state = ttk.Label(frame, text=_("connecting…"), foreground="#666", name="state")
        self.state.pack(anchor="w", pady=(4, 0))
        # Shown only once the server sends them (apply_options): branding and a link.
        self.logo = ttk.Label(frame, name="logo")
        self.link = ttk.Label(frame, foreground="#0645ad", cursor="hand2", name="details")
        self.link.bind("<Button-1>", self._open_details)
        self._logo_image: tk.PhotoImage | None = None
        self.effective: Effective = effective({}, options)
        self._place(options.window_position)
        if options.hide_balance:
            self.root.withdraw()
        elif options.minimized:
            self.root.iconify()
        self.dialogs: dict[uuid.UUID, PromptDialog] = {}
        self.messages: list[MessageWindow] = []
        self.connection_popup: MessageWindow | None = None
        self.app = None
        self._closed = False
        self.recent_window = None
        self._balance: ShowBalance | None = None
        self._connection = _("connecting…")
        self._start_tray()
        self.docked = self.tray is not None and self.tray.poll()
        if self.docked:
            self.root.withdraw()
            log.info("tray icon in the system tray; the balance window opens from its menu")
        elif self.tray is None:
            # Not X11, or a Python whose Tk is built in (no shared Tk and Xlib to call).
            log.info("no tray icon with this Tk: showing the balance window instead")
        else:
            log.info("no system tray on this desktop: showing the balance window instead")

    def _start_tray(self) -> None:
        # Imported only for windows (ctypes, the tray protocol), keeping start-up light.
        from platen.client.tktray import TrayIcon

        self.tray = tray = TrayIcon.start(
            self.root,
            on_open=self.open_window,
            on_recent=self.show_recent_jobs,
            on_quit=self.quit,
        )
        if tray is not None:
            tray.set_menu(
                balance_window=not self.effective.hide_balance,
                allow_quit=self.effective.allow_quit,
            )
        self._show_in_tray()

    def _show_in_tray(self) -> None:
        """The balance beside the tray icon and in its tooltip (neither when hidden)."""
        if self.tray is None:
            return
        title = self.effective.title or "Platen"
        lines = [f"{title} - {self.options.login}"]
        text = ""
        if not self.effective.hide_balance:
            shown = self._balance
            text = shown.balance if shown else "…"
            if shown is not None:
                lines.append(_("Balance {amount}").format(amount=shown.balance))
                if shown.available != shown.balance:
                    lines.append(_("available {amount}").format(amount=shown.available))
        lines.append(self._connection)
        self.tray.show(text, "\n".join(lines))

    def open_window(self) -> None:
        """The balance window, from the tray's menu."""
        if self.effective.hide_balance:
            return
        self.root.deiconify()
        self.root.lift()

    def show_recent_jobs(self) -> None:
        from platen.client.tktray import RecentJobsWindow

        if self.recent_window is None or not self.recent_window.winfo_exists():
            title = _("Recent jobs - {login}").format(login=self.options.login)
            self.recent_window = RecentJobsWindow(self.root, title)
        self._refresh_recent()
        self.recent_window.deiconify()
        self.recent_window.lift()

    def _refresh_recent(self) -> None:
        if self.recent_window is not None and self.recent_window.winfo_exists():
            jobs = list(self.app.model.recent_jobs.values()) if self.app is not None else []
            self.recent_window.refresh(jobs)

    def _poll_tray(self) -> None:
        docked = self.tray.poll()
        if docked == self.docked:
            return
        self.docked = docked
        if docked:
            log.info("a system tray started: the tray icon is in it")
            self.root.withdraw()
        else:
            log.warning("the system tray went away: showing the balance window instead")
            if not self.effective.hide_balance:
                # As the client starts where there is no tray.
                self.root.iconify() if self.options.minimized else self.root.deiconify()

    def _place(self, position) -> None:
        self.root.update_idletasks()
        screen = (self.root.winfo_screenwidth(), self.root.winfo_screenheight())
        size = (max(self.root.winfo_reqwidth(), 180), self.root.winfo_reqheight())
        self.root.geometry(corner_geometry(position, screen, size))

    def _open_details(self, _event=None) -> None:
        url = self.effective.details_url
        # Checked by the server and again on arrival; opened only on the user's click.
        if url and url.startswith("https://"):
            webbrowser.open(url)

    # ----------------------------------------------------------------- the View protocol

    def apply_options(self, options: Effective) -> None:
        before, self.effective = self.effective, options
        login = self.options.login
        self.root.title(f"{options.title} - {login}" if options.title else f"Platen - {login}")
        self.balance.configure(foreground=options.colour or "")
        self._show_logo(options.logo)
        if options.details_url:
            self.link.configure(text=options.details_text or _("Details"))
            self.link.pack(anchor="w", pady=(4, 0))
        else:
            self.link.pack_forget()
        if options.window_position != before.window_position:
            self._place(options.window_position)
        if options.hide_balance:
            self.root.withdraw()
        elif before.hide_balance and not self.options.minimized and not self.docked:
            self.root.deiconify()
        if self.tray is not None:
            self.tray.set_menu(
                balance_window=not options.hide_balance, allow_quit=options.allow_quit
            )
            self._show_in_tray()

    def _show_logo(self, data: bytes | None) -> None:
        image = None
        if data:
            try:
                # Tk reads PNG and GIF itself; a picture it cannot read is left out.
                image = tk.PhotoImage(master=self.root, data=data)
            except tk.TclError:
                image = None
        self._logo_image = image
        if image is None:
            self.logo.pack_forget()
        else:
            self.logo.configure(image=image)
            self.logo.pack(anchor="w", before=self.balance.master.children["caption"])

    def message(self, message: Message) -> None:
        pass

    def show_prompt(self, prompt: JobPrompt) -> None:
        dialog = self.dialogs.get(prompt.job_id)
        if dialog is None or not dialog.winfo_exists():
            cls = PromptDialog if prompt.kind == "confirm" else AccountDialog
            selection = self.effective.default_selection
            kw = {} if cls is PromptDialog else {"default_selection": selection}
            dialog = cls(self.root, prompt, self.app.model, self._answer, **kw)
            self.dialogs[prompt.job_id] = dialog
        else:
            dialog.deiconify()
        dialog.lift()
        dialog.attributes("-topmost", True)
        self.refresh_waiting()

    def close_prompt(self, job_id: uuid.UUID, text: str) -> None:
        dialog = self.dialogs.pop(job_id, None)
        if dialog is not None and dialog.winfo_exists():
            dialog.destroy()
        self.refresh_waiting()

    def refresh_waiting(self) -> None:
        """Each open popup's "apply to all" counts the jobs waiting now."""
        for dialog in self.dialogs.values():
            if dialog.winfo_exists():
                dialog.refresh_waiting()

    def notify(self, note: Notify) -> None:
        if note.level == "error" and note.message is not None and self._refusal(note):
            return
        asyncio.get_running_loop().create_task(self._notify(note))

    def _refusal(self, note: Notify) -> bool:
        """A refused answer is told in its dialog, which stays open for another try."""
        job_id = getattr(note.message, "job_id", None)
        dialog = self.dialogs.get(job_id) if job_id else None
        if dialog is not None and dialog.winfo_exists():
            dialog.show_error(note.text)
            return True
        return False

    async def _notify(self, note: Notify) -> None:
        self._refresh_recent()
        if await self.notifier.send(note.title, note.text):
            return
        self.messages.append(MessageWindow(self.root, note.title, note.text, note.level))

    def show_balance(self, balance: ShowBalance) -> None:
        self._balance = balance
        self._show_in_tray()
        self.balance.configure(text=balance.balance)
        self.available.configure(
            text=""
            if balance.available == balance.balance
            else _("available {amount}").format(amount=balance.available)
        )

    def status(self, state: str, detail: str) -> None:
        if state == "warning":
            return  # not about the connection (e.g. a message it could not read)
        text = {"connected": _("connected"), "waiting": _("waiting for the server…")}.get(
            state, _("not connected - retrying")
        )
        self.state.configure(text=text, foreground="#666" if state == "connected" else "#b00020")
        self._connection = text
        self._show_in_tray()
        if state == "connected" and self.connection_popup is not None:
            if self.connection_popup.winfo_exists():
                self.connection_popup.destroy()
            self.connection_popup = None
        elif state == "disconnected" and not self.options.silent and self.connection_popup is None:
            self.connection_popup = MessageWindow(
                self.root,
                _("Platen is not connected"),
                f"{detail}\n{_('Retrying…')}",
                "warning",
            )

    def answer_sent(self, job_id: uuid.UUID, action: str) -> None:
        self.close_prompt(job_id, "")

    # ------------------------------------------------------------------------ the loop

    def _answer(self, job_id: uuid.UUID, choice: Choice, apply_to_all: bool) -> None:
        try:
            self.app.answer(job_id, choice, apply_to_all=apply_to_all)
        except UnknownPrompt:
            self.close_prompt(job_id, "")

    def close_window(self) -> None:
        """The balance window's close button: with a tray icon to come back to, the
        window only closes; without one, it quits (where quitting is allowed)."""
        if self.docked:
            self.root.withdraw()
        else:
            self.quit()

    def quit(self) -> None:
        if not self.effective.allow_quit:
            # Quitting is not allowed (by the server or this desktop): the window closes,
            # the client keeps running.
            if self.docked:
                self.root.withdraw()
            else:
                self.root.iconify()
            return
        self._closed = True

    async def run(self, app) -> None:
        self.app = app
        loop = asyncio.get_running_loop()
        next_poll = loop.time() + TRAY_POLL_SECONDS
        try:
            while not self._closed:
                self.root.update()
                if self.tray is not None and loop.time() >= next_poll:
                    next_poll = loop.time() + TRAY_POLL_SECONDS
                    self._poll_tray()
                await asyncio.sleep(FRAME_SECONDS)
        except tk.TclError:
            pass  # the window was destroyed
        finally:
            self._closed = True
            with contextlib.suppress(tk.TclError):
                self.root.destroy()
