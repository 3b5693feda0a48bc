"""The sign-in dialog of GUI mode: the user's directory password, typed without echo."""

from __future__ import annotations

from platen.client.i18n import _


def ask_password(login: str, desktop: str, *, on_shown=None) -> str | None:
    """The password typed, or None if the user cancelled. `on_shown(root, entry, ok)` is
    called once the dialog is up (the tests type into it and press `ok`)."""
    import tkinter as tk

    root = tk.Tk()
    root.title(_("Platen: sign in"))
    root.resizable(False, False)
    result: list[str] = []
    tk.Label(
        root,
        text=_("Sign in to Platen as {login} on {desktop}.").format(login=login, desktop=desktop),
    ).pack(padx=16, pady=(16, 4))
    tk.Label(root, text=_("Your directory password:")).pack(padx=16, anchor="w")
    entry = tk.Entry(root, show="\u2022", width=32)
    entry.pack(padx=16, pady=4)
    entry.focus_set()

    def ok(_event=None) -> None:
        result.append(entry.get())
        root.destroy()

    buttons = tk.Frame(root)
    buttons.pack(padx=16, pady=(4, 16), anchor="e")
    tk.Button(buttons, text=_("Cancel"), command=root.destroy).pack(side="right")
    tk.Button(buttons, text=_("Sign in"), command=ok, default="active").pack(side="right")
    root.bind("<Return>", ok)
    root.bind("<Escape>", lambda _event: root.destroy())
    if on_shown is not None:
        root.after(50, on_shown, root, entry, ok)
    root.mainloop()
    return result[0] if result else None
