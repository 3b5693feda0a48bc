"""The Tk GUI: a small balance window at a corner of the screen, a dialog per prompt,
native notifications (or message windows when the desktop has none).

Tk runs in the asyncio thread: `run` lets Tk handle its events every few milliseconds,
so no dialog ever blocks the broker connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import tkinter as tk
import uuid
import webbrowser
from tkinter import ttk

from platen.client.config import Options
from platen.client.i18n import _
from platen.client.model import Choice, Notify, ShowBalance, UnknownPrompt
from platen.client.notifier import Notifier
from platen.client.serveroptions import Effective, effective
from platen.client.tkdialogs import AccountDialog, MessageWindow, PromptDialog
from platen.events.base import Message
from platen.events.desktop import JobPrompt

FRAME_SECONDS = 0.05  # 20 times a second: prompt enough for a person, cheap when idle
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
        self.root.protocol("WM_DELETE_WINDOW", self.quit)
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
        elif before.hide_balance and not self.options.minimized:
            self.root.deiconify()

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
        if await self.notifier.send(note.title, note.text):
            return
        self.messages.append(MessageWindow(self.root, note.title, note.text, note.level))

    def show_balance(self, balance: ShowBalance) -> None:
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

    def quit(self) -> None:
        if not self.effective.allow_quit:
            # Quitting is not allowed (by the server or this desktop): the window closes,
            # the client keeps running.
            self.root.iconify()
            return
        self._closed = True

    async def run(self, app) -> None:
        self.app = app
        try:
            while not self._closed:
                self.root.update()
                await asyncio.sleep(FRAME_SECONDS)
        except tk.TclError:
            pass  # the window was destroyed
        finally:
            self._closed = True
            with contextlib.suppress(tk.TclError):
                self.root.destroy()
