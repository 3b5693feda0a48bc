"""The popups, as thin Tk views: they show what the model gives them and hand the user's
choice back through `on_answer`. Widgets have names (e.g. `print`, `search`) so that tests
and assistive tools can find them."""

from __future__ import annotations

import tkinter as tk
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from tkinter import ttk

from platen.client.contract import JobPrompt
from platen.client.formatting import identity_question, prompt_facts
from platen.client.i18n import N_, _
from platen.client.model import Choice, ClientModel
from platen.events.identity_question import is_identity_question

Answer = Callable[[uuid.UUID, Choice, bool], None]
PAD = {"padx": 10, "pady": 4}


class PromptDialog(tk.Toplevel):
    """What every prompt shows: the job, the printer's messages, a countdown, the buttons."""

    title_text = N_("Print job confirmation")
    print_text = N_("Print")
    cancel_text = N_("Cancel job")

    def __init__(self, master: tk.Misc, prompt: JobPrompt, model: ClientModel, on_answer: Answer):
        super().__init__(master, name=f"prompt_{prompt.job_id.hex}")
        self.prompt = prompt
        self.model = model
        self.on_answer = on_answer
        self.identity = identity_question(prompt)
        if self.identity:
            # Nothing proved this job is the user's: the popup is that question.
            self.title_text = N_("Did you print this?")
            self.print_text = N_("Yes, print it")
            self.cancel_text = N_("No, cancel it")
        self.title(_(self.title_text))
        self.resizable(False, False)
        self.protocol("WM_DELETE_WINDOW", self.cancel)
        body = ttk.Frame(self, padding=8, name="body")
        body.pack(fill="both", expand=True)
        ttk.Label(
            body, text=self.heading(), font=("TkDefaultFont", 11, "bold"), name="heading"
        ).pack(anchor="w", **PAD)
        if question := self.identity:
            # Nothing proved this job is the user's: the question comes before all else.
            ttk.Label(
                body,
                text=f"{question}\n"
                + _("If you did not, cancel it: someone printed in your name."),
                foreground="#b00020",
                font=("TkDefaultFont", 12, "bold"),
                wraplength=360,
                name="identity_question",
            ).pack(anchor="w", **PAD)
        facts = ttk.Frame(body, name="facts")
        facts.pack(fill="x", **PAD)
        for row, (key, label, value) in enumerate(prompt_facts(prompt)):
            ttk.Label(facts, text=f"{label}:").grid(row=row, column=0, sticky="w")
            ttk.Label(facts, text=value, name=f"fact_{key}").grid(
                row=row, column=1, sticky="w", padx=(8, 0)
            )
        for i, note in enumerate(prompt.messages):
            if is_identity_question(note):
                continue
            ttk.Label(body, text=note, foreground="#8a4b00", wraplength=360, name=f"note_{i}").pack(
                anchor="w", **PAD
            )
        self.build_choice(body)
        self.error = ttk.Label(body, text="", foreground="#b00020", wraplength=360, name="error")
        self.error.pack(anchor="w", **PAD)
        self.apply_all = tk.BooleanVar(value=False)
        self.apply_all_box = ttk.Checkbutton(body, variable=self.apply_all, name="apply_all")
        if not self.identity:  # that question is answered job by job (model._fits)
            self.apply_all_box.pack(anchor="w", **PAD)
        self.refresh_waiting()
        self.countdown = ttk.Label(body, text="", name="countdown")
        self.countdown.pack(anchor="w", **PAD)
        buttons = ttk.Frame(body, name="buttons")
        buttons.pack(fill="x", pady=(6, 0))
        ttk.Button(buttons, text=_(self.cancel_text), command=self.cancel, name="cancel").pack(
            side="right", padx=4
        )
        ttk.Button(buttons, text=_(self.print_text), command=self.print_, name="print").pack(
            side="right", padx=4
        )
        self.tick()

    def heading(self) -> str:
        if self.identity:
            return _("Is this print job yours?")
        return _("Do you want to print this job?")

    def build_choice(self, body: ttk.Frame) -> None:
        """Where a subclass asks more (the account that pays)."""

    def choice(self) -> Choice | None:
        return Choice("print")

    def current_choice(self) -> Choice | None:
        """What the dialog would answer now, without telling the user what is missing."""
        return Choice("print")

    def refresh_waiting(self) -> None:
        """How many waiting jobs "apply to all" would answer, this one included."""
        if not hasattr(self, "apply_all_box") or not self.winfo_exists():
            return
        count = len(self.model.jobs_for(self.prompt.job_id, self.current_choice()))
        self.apply_all_box.configure(
            text=_("Apply to all my waiting jobs ({count})").format(count=count),
            state="normal" if count > 1 else "disabled",
        )
        if count <= 1:
            self.apply_all.set(False)

    def tick(self) -> None:
        left = int((self.prompt.expires_at - datetime.now(UTC)).total_seconds())
        if left >= 0:
            self.countdown.configure(
                text=_("Answer within {time}").format(time=f"{left // 60}:{left % 60:02d}")
            )
        self._tick = self.after(1000, self.tick)

    def destroy(self) -> None:
        if getattr(self, "_tick", None):
            self.after_cancel(self._tick)
        super().destroy()

    def show_error(self, text: str) -> None:
        self.error.configure(text=text)

    def print_(self) -> None:
        choice = self.choice()
        if choice is not None:
            self.on_answer(self.prompt.job_id, choice, self.apply_all.get())

    def cancel(self) -> None:
        self.on_answer(self.prompt.job_id, Choice("cancel"), self.apply_all.get())


class AccountDialog(PromptDialog):
    """Who pays: my personal account, a shared account from my list (favourites first,
    searchable by name or code, with the balance where the account shows it), or one by
    PIN."""

    title_text = N_("Choose the account to charge")

    def __init__(self, *args, default_selection: str = "personal", **kw) -> None:
        self.default_selection = default_selection
        super().__init__(*args, **kw)

    def heading(self) -> str:
        return _("Which account should pay for this job?")

    def build_choice(self, body: ttk.Frame) -> None:
        prompt = self.prompt
        personal = self.model.personal_account(prompt)
        shared = self.model.shared_accounts(prompt)
        modes = []
        if personal is not None:
            modes.append("personal")
        if shared:
            modes.append("list")
        if prompt.allow_pin:
            modes.append("pin")
        start = self.default_selection if self.default_selection in modes else modes[0]
        self.mode = tk.StringVar(value=start)
        self.mode.trace_add("write", lambda *_a: self.refresh_waiting())
        box = ttk.Frame(body, name="choice")
        box.pack(fill="x", **PAD)
        if personal is not None:
            text = _("Charge my personal account")
            if personal.available is not None:
                text += " " + _("(available {amount})").format(amount=personal.available)
            ttk.Radiobutton(
                box, text=text, value="personal", variable=self.mode, name="mode_personal"
            ).pack(anchor="w")
        if shared:
            ttk.Radiobutton(
                box,
                text=_("Charge a shared account:"),
                value="list",
                variable=self.mode,
                name="mode_list",
            ).pack(anchor="w")
            self.search = tk.StringVar()
            search_row = ttk.Frame(box)
            search_row.pack(fill="x", padx=(24, 0))
            ttk.Label(search_row, text=_("Search (name or code)")).pack(side="left")
            ttk.Entry(search_row, textvariable=self.search, name="search").pack(
                side="left", fill="x", expand=True, padx=(4, 0)
            )
            self.search.trace_add("write", lambda *_a: self.fill_list())
            columns = ("favourite", "account", "code", "available")
            self.accounts = ttk.Treeview(
                box, columns=columns, show="headings", height=5, selectmode="browse",
                name="accounts",
            )  # fmt: skip
            headings = ("★", _("Account"), _("Code"), _("Available"))
            widths = (24, 170, 80, 96)
            for column, heading, width in zip(columns, headings, widths, strict=True):
                self.accounts.heading(column, text=heading)
                anchor = "e" if column == "available" else "w"
                self.accounts.column(column, width=width, anchor=anchor, stretch=False)
            self.accounts.pack(fill="x", padx=(24, 0), pady=2)
            # Selecting a row by program (the list refilled) also says <<TreeviewSelect>>:
            # only the user's own click or keys in the list choose "a shared account".
            self.accounts.bind("<<TreeviewSelect>>", lambda _e: self._picked())
            for event in ("<Button-1>", "<FocusIn>"):
                self.accounts.bind(event, lambda _e: self.mode.set("list"), add="+")
            self.favourite = ttk.Button(
                box, text=_("Add to favourites"), command=self.toggle_favourite, name="favourite"
            )
            self.favourite.pack(anchor="e", padx=(24, 0))
            self.shown: list[str] = []
            self.fill_list()
        if prompt.allow_pin:
            ttk.Radiobutton(
                box,
                text=_("Charge a shared account with its PIN:"),
                value="pin",
                variable=self.mode,
                name="mode_pin",
            ).pack(anchor="w")
            pin_row = ttk.Frame(box)
            pin_row.pack(fill="x", padx=(24, 0))
            ttk.Label(pin_row, text=_("Account or code")).pack(side="left")
            self.pin_account = tk.StringVar()
            ttk.Entry(pin_row, textvariable=self.pin_account, width=16, name="pin_account").pack(
                side="left", padx=4
            )
            ttk.Label(pin_row, text=_("PIN")).pack(side="left")
            self.pin = tk.StringVar()
            ttk.Entry(pin_row, textvariable=self.pin, show="•", width=8, name="pin").pack(
                side="left", padx=4
            )
        ttk.Label(box, text=_("Comment (optional)")).pack(anchor="w", pady=(6, 0))
        self.comment = tk.StringVar()
        ttk.Entry(box, textvariable=self.comment, name="comment").pack(fill="x")

    def fill_list(self, keep: str | None = None) -> None:
        options = self.model.shared_accounts(self.prompt, self.search.get())
        self.accounts.delete(*self.accounts.get_children())
        self.shown = [a.account for a in options]
        for a in options:
            star = "★" if a.account in self.model.favourites else ""
            available = "" if a.available is None else str(a.available)
            self.accounts.insert(
                "", "end", iid=a.account, values=(star, a.path, a.code or "", available)
            )
        if options:
            self.accounts.selection_set(keep if keep in self.shown else self.shown[0])
        self._picked()

    def selected(self) -> str | None:
        picked = self.accounts.selection()
        return picked[0] if picked else None

    def _picked(self) -> None:
        account = self.selected()
        marked = account is not None and account in self.model.favourites
        self.favourite.configure(
            text=_("Remove from favourites") if marked else _("Add to favourites"),
            state="normal" if account is not None else "disabled",
        )
        self.refresh_waiting()

    def toggle_favourite(self) -> None:
        account = self.selected()
        if account is not None:
            self.model.toggle_favourite(account)
            self.fill_list(keep=account)

    def current_choice(self) -> Choice | None:
        mode = self.mode.get() if hasattr(self, "mode") else "personal"
        if mode == "personal":
            personal = self.model.personal_account(self.prompt)
            return Choice("print", personal.account if personal else None)
        if mode == "list":
            account = self.selected() if hasattr(self, "accounts") else None
            return Choice("print", account) if account else None
        return Choice("print", "?", pin="?")  # fits the jobs of the same kind

    def choice(self) -> Choice | None:
        comment = self.comment.get().strip() or None
        mode = self.mode.get()
        if mode == "personal":
            personal = self.model.personal_account(self.prompt)
            return Choice("print", personal.account if personal else None, comment=comment)
        if mode == "list":
            account = self.selected()
            if account is None:
                self.show_error(_("Choose an account from the list."))
                return None
            return Choice("print", account, comment=comment)
        account, pin = self.pin_account.get().strip(), self.pin.get().strip()
        if not account or not pin:
            self.show_error(_("Type the account's name or code and its PIN."))
            return None
        return Choice("print", account, pin=pin, comment=comment)


class MessageWindow(tk.Toplevel):
    """A message the desktop could not show as a notification (or one that must be seen)."""

    def __init__(self, master: tk.Misc, title: str, text: str, level: str = "info") -> None:
        super().__init__(master)
        self.title(title)
        self.resizable(False, False)
        colour = {"error": "#b00020", "warning": "#8a4b00"}.get(level, "")
        frame = ttk.Frame(self, padding=12)
        frame.pack(fill="both", expand=True)
        ttk.Label(frame, text=title, font=("TkDefaultFont", 11, "bold"), name="title").pack(
            anchor="w"
        )
        ttk.Label(frame, text=text, wraplength=380, foreground=colour, name="text").pack(
            anchor="w", pady=8
        )
        ttk.Button(frame, text=_("OK"), command=self.destroy, name="ok").pack(side="right")
