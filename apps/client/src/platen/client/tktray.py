"""The tray icon: the balance in the desktop's system tray, and a menu (the balance
window, the recent jobs, quit when allowed).

The icon is a small Tk toplevel whose X window the system tray embeds (xembed.py), so
Tk draws it and its menu is an ordinary Tk popup menu. Whether a tray holds it is
checked again every second (`poll`): a tray that starts after the client (log-in races
the desktop's panel) gets the icon, and one that goes away gives the window back.
"""

from __future__ import annotations

import logging
import time
import tkinter as tk
from tkinter import ttk

from platen.client.i18n import N_, _
from platen.client.model import RecentJob
from platen.client.xembed import SystemTray

log = logging.getLogger("platen.client")

# How long a tray may take to embed the icon after being asked (it answers at once; the
# margin is for a busy desktop). Until then the icon counts as docked, so the balance
# window does not flash up at start.
EMBED_GRACE_SECONDS = 3.0
PAPER = "#ffffff"
INK = "#37474f"


def _glyph(master) -> tk.PhotoImage:
    """A 16×16 sheet of paper with lines of text: the icon beside the balance."""
    image = tk.PhotoImage(master=master, width=16, height=16)
    image.put(INK, to=(2, 0, 14, 16))
    image.put(PAPER, to=(3, 1, 13, 15))
    for y in (4, 7, 10):
        image.put(INK, to=(5, y, 11, y + 1))
    return image


class TrayIcon:
    def __init__(self, root: tk.Tk, tray: SystemTray, *, on_open, on_recent, on_quit) -> None:
        self.tray = tray
        self.icon = tk.Toplevel(root, name="tray_icon")
        self.icon.overrideredirect(True)
        # Withdrawn until a tray holds its window: a tray sizes an icon from its hints only
        # when it arrives unmapped. Then "shown", off screen (`poll`): Tk draws only the
        # widgets of a toplevel it thinks mapped, and its empty frame stays out of sight.
        self.icon.geometry("+-4000+-4000")
        self.icon.withdraw()
        self._glyph = _glyph(self.icon)
        self.label = tk.Label(
            self.icon, name="tray_label", image=self._glyph, compound="left", padx=3, bd=0
        )
        self.label.pack(fill="both", expand=True)
        self.menu = tk.Menu(self.icon, tearoff=False, name="tray_menu")
        self.tip_text = ""
        self.tip: tk.Toplevel | None = None
        self._on_open, self._on_recent, self._on_quit = on_open, on_recent, on_quit
        for button in ("<Button-1>", "<Button-3>"):
            self.label.bind(button, self._popup)
        self.label.bind("<Enter>", self._show_tip)
        self.label.bind("<Leave>", self._hide_tip)
        self.icon.update_idletasks()
        self.window = self.icon.winfo_id()
        self._home = tray.parent(self.window)[1]  # the Tk frame it leaves for the tray
        self.manager = 0
        self._asked = 0.0
        self.embedded = False

    @classmethod
    def start(cls, root: tk.Tk, **callbacks) -> TrayIcon | None:
        tray = SystemTray.of(root)
        return None if tray is None else cls(root, tray, **callbacks)

    # ------------------------------------------------------------------- the tray

    def poll(self) -> bool:
        """Dock the icon in the tray running now; whether the icon is in a tray."""
        manager = self.tray.manager()
        if self.manager and manager != self.manager:
            # The tray ended (or another replaced it): it gave the window back to the
            # screen's root, where it must not linger as a stray box.
            self.icon.withdraw()
            self.tray.hide(self.window)
            self.manager, self.embedded = 0, False
        if manager and not self.manager:
            self.manager = self.tray.dock(self.window, self._size())
            self._asked = time.monotonic()
        if not self.manager:
            return False
        root, parent = self.tray.parent(self.window)
        self.embedded = parent not in (0, root, self._home)
        if self.embedded and self.icon.state() == "withdrawn":
            self.icon.deiconify()
        return self.embedded or time.monotonic() - self._asked < EMBED_GRACE_SECONDS

    def _size(self) -> tuple[int, int]:
        self.icon.update_idletasks()
        return self.label.winfo_reqwidth(), self.label.winfo_reqheight()

    # ------------------------------------------------------------------- what it shows

    def show(self, text: str, tip: str) -> None:
        """The text beside the icon (the balance, or nothing) and its tooltip."""
        before = self._size()
        self.label.configure(text=text)
        self.tip_text = tip
        if self.tip is not None:
            self.tip.children["text"].configure(text=tip)
        if self.manager and self._size() != before:
            self.tray.resize(self.window, self._size())

    def set_menu(self, *, balance_window: bool, allow_quit: bool) -> None:
        """The menu's entries: quit only when quitting is allowed."""
        self.menu.delete(0, "end")
        self.menu.add_command(
            label=_("Balance window"),
            command=self._on_open,
            state="normal" if balance_window else "disabled",
        )
        self.menu.add_command(label=_("Recent jobs"), command=self._on_recent)
        if allow_quit:
            self.menu.add_separator()
            self.menu.add_command(label=_("Quit Platen"), command=self._on_quit)

    def entries(self) -> list[str]:
        """The menu's labels, top to bottom (separators left out)."""
        end = self.menu.index("end")
        return [
            str(self.menu.entrycget(i, "label"))
            for i in range(0 if end is None else end + 1)
            if self.menu.type(i) == "command"
        ]

    def choose(self, label: str) -> None:
        """Pick a menu entry by its label, as a click on it does."""
        end = self.menu.index("end") or 0
        for i in range(end + 1):
            if self.menu.type(i) == "command" and self.menu.entrycget(i, "label") == label:
                self.menu.invoke(i)
                return
        raise KeyError(label)

    def _popup(self, event) -> None:
        self._hide_tip()
        self.menu.tk_popup(event.x_root, event.y_root)

    def _show_tip(self, _event=None) -> None:
        if self.tip is not None or not self.tip_text:
            return
        self.tip = tk.Toplevel(self.icon, name="tray_tip")
        self.tip.overrideredirect(True)
        look = {"background": "#ffffe0", "relief": "solid", "bd": 1, "padx": 4, "pady": 2}
        tk.Label(self.tip, name="text", text=self.tip_text, justify="left", **look).pack()
        x, y = self.icon.winfo_pointerxy()
        self.tip.geometry(f"+{x + 12}+{y + 16}")

    def _hide_tip(self, _event=None) -> None:
        if self.tip is not None:
            self.tip.destroy()
            self.tip = None

    def destroy(self) -> None:
        self._hide_tip()
        self.icon.destroy()


OUTCOMES = {"printed": N_("printed"), "denied": N_("denied"), "cancelled": N_("cancelled")}


class RecentJobsWindow(tk.Toplevel):
    """The user's last jobs, newest first: document, printer, what became of it, cost."""

    def __init__(self, master, title: str) -> None:
        super().__init__(master, name="recent_jobs")
        self.title(title)
        frame = ttk.Frame(self, padding=8)
        frame.pack(fill="both", expand=True)
        columns = ("document", "printer", "outcome", "cost")
        self.table = ttk.Treeview(frame, columns=columns, show="headings", height=10, name="jobs")
        for column, heading, width in zip(
            columns,
            (_("Document"), _("Printer"), _("Outcome"), _("Cost")),
            (220, 110, 90, 70),
            strict=True,
        ):
            self.table.heading(column, text=heading)
            self.table.column(column, width=width, anchor="e" if column == "cost" else "w")
        self.table.pack(fill="both", expand=True)
        self.empty = ttk.Label(frame, name="empty", text=_("No jobs yet."))
        ttk.Button(frame, text=_("Close"), name="close", command=self.withdraw).pack(
            anchor="e", pady=(6, 0)
        )
        self.protocol("WM_DELETE_WINDOW", self.withdraw)

    def refresh(self, jobs: list[RecentJob]) -> None:
        self.table.delete(*self.table.get_children())
        for job in reversed(jobs):
            outcome = _(OUTCOMES[job.outcome]) if job.outcome in OUTCOMES else job.outcome
            cost = "" if job.cost is None else str(job.cost)
            self.table.insert(
                "",
                "end",
                iid=str(job.job_id),
                values=(job.document, job.printer or "", outcome, cost),
            )
        if jobs:
            self.empty.pack_forget()
        else:
            self.empty.pack(anchor="w", before=self.table)

    def rows(self) -> list[tuple]:
        return [tuple(self.table.item(r, "values")) for r in self.table.get_children()]
