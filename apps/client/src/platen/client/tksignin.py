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


def tell_signed_out(*, on_shown=None) -> None:
    """After the server signed this desktop out (the client's windows are gone): say so,
    and how to sign in again, until the user closes it. `on_shown(root)`: for the tests."""
    import tkinter as tk

    root = tk.Tk()
    root.title(_("Platen: signed out"))
    root.resizable(False, False)
    tk.Label(
        root,
        text=_(
            "This desktop was signed out of Platen.\nSign in again with: platen-client --sign-in"
        ),
        justify="left",
    ).pack(padx=16, pady=16)
    tk.Button(root, text=_("Close"), command=root.destroy, default="active").pack(pady=(0, 16))
    root.bind("<Return>", lambda _event: root.destroy())
    if on_shown is not None:
        root.after(50, on_shown, root)
    root.mainloop()
