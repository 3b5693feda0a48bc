"""The Tk windows, for real, on a private X display (Xvfb): what they show and what their
buttons send. The broker is left out here (tests/e2e/test_client_gui.py has it)."""

from __future__ import annotations

import asyncio
import base64
import io
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from PIL import Image

from platen.client.app import ClientApp
from platen.client.config import Options
from platen.client.contract import (
    AnswerResult,
    BalanceNotice,
    BroadcastNotice,
    ClientOptionsNotice,
    DeniedNotice,
    JobPrompt,
    LowBalanceNotice,
    PrintedNotice,
    PromptAccount,
    PromptClosed,
)
from platen.client.model import ClientModel
from platen.client.notifier import Notifier
from platen.client.recent import Favourites, RecentAccounts
from platen.client.tkdialogs import AccountDialog, MessageWindow, PromptDialog
from platen.client.tkview import TkView, corner_geometry
from platen.testing.xvfb import screenshot


class Sent:
    """Stands in for the broker transport: keeps what the client would publish."""

    def __init__(self) -> None:
        self.replies = []

    def send(self, reply) -> None:
        self.replies.append(reply)


class FakeDelivery:
    def __init__(self, message) -> None:
        self.message = message
        self.acked = False

    async def ack(self) -> None:
        self.acked = True


def prompt(kind="confirm", **kw) -> JobPrompt:
    fields = dict(
        job_id=uuid.uuid4(),
        kind=kind,
        document_name="Quarterly report.pdf",
        printer="lab-colour",
        sides=3,
        color_sides=1,
        grayscale_sides=2,
        copies=2,
        duplex=True,
        cost=Decimal("0.90"),
        accounts=[PromptAccount(account="personal:bob", path="bob", charge_rate=Decimal(1))],
        allow_pin=False,
        expires_at=datetime.now(UTC) + timedelta(minutes=9, seconds=30),
        messages=[],
    )
    fields.update(kw)
    return JobPrompt(**fields)


SHARED = [
    PromptAccount(account="personal:bob", path="bob", charge_rate=Decimal(1)),
    PromptAccount(account="shared:acme", path="clients/acme", charge_rate=Decimal(1)),
    PromptAccount(account="shared:globex", path="clients/globex", charge_rate=Decimal("1.5")),
    PromptAccount(account="shared:initech", path="research/initech", charge_rate=Decimal(1)),
]


@pytest.fixture
async def gui(display, tmp_path):
    options = Options(
        login="bob",
        url="amqp://localhost/",
        window_position="top-left",
        disable_notifications=True,
        default_selection="list",
    )
    view = TkView(options)
    model = ClientModel(
        "bob",
        recent=RecentAccounts.load(tmp_path / "recent.json"),
        favourites=Favourites.load(tmp_path / "config" / "favourites.json"),
    )
    app = ClientApp(model, view, Sent())
    view.app = app
    yield view, app
    view.root.destroy()


async def deliver(app, message) -> FakeDelivery:
    d = FakeDelivery(message)
    await app.on_delivery(d)
    await pump(app.view)
    return d


async def pump(view, rounds: int = 5) -> None:
    for _ in range(rounds):
        view.root.update()
        await asyncio.sleep(0.02)


def texts(widget) -> list[str]:
    """Every text shown in `widget` and its children."""
    out = []
    for child in widget.winfo_children():
        try:
            text = child.cget("text")
        except Exception:
            text = ""
        if text:
            out.append(str(text))
        out.extend(texts(child))
    return out


def find(widget, name: str):
    for child in widget.winfo_children():
        if child.winfo_name() == name:
            return child
        found = find(child, name)
        if found is not None:
            return found
    return None


def paths(tree) -> list[str]:
    """The account paths an account list shows, top to bottom."""
    return [tree.item(row, "values")[1] for row in tree.get_children()]


def assert_picture(path) -> None:
    image = Image.open(path)
    assert image.size[0] > 100 and image.size[1] > 40
    assert len(image.getcolors(1 << 16) or []) > 10  # text, not an empty window


async def test_balance_window_shows_the_balance_at_its_corner(gui, display, shots):
    view, app = gui
    d = await deliver(app, BalanceNotice(balance=Decimal("12.40"), available=Decimal("11.90")))
    assert d.acked
    shown = texts(view.root)
    assert "12.40" in shown and "available 11.90" in shown
    assert view.root.winfo_rootx() < 40 and view.root.winfo_rooty() < 40  # top-left
    await deliver(app, BalanceNotice(balance=Decimal("12.10"), available=Decimal("12.10")))
    assert "12.10" in texts(view.root)
    assert_picture(screenshot(display, view.root, shots / "balance-window.png"))


def test_corner_geometry():
    assert corner_geometry("top-left", (1000, 800), (200, 80)) == "+16+16"
    assert corner_geometry("bottom-right", (1000, 800), (200, 80)) == "+784+664"
    assert corner_geometry((30, 40), (1000, 800), (200, 80)) == "+30+40"


async def test_confirmation_dialog_shows_the_job_and_print_sends_the_answer(gui, display, shots):
    view, app = gui
    p = prompt(messages=["Colour pages cost 0.20 more on this printer."])
    delivery = await deliver(app, p)
    dialog = view.dialogs[p.job_id]
    assert isinstance(dialog, PromptDialog) and not isinstance(dialog, AccountDialog)
    shown = texts(dialog)
    for expected in (
        "Quarterly report.pdf",
        "lab-colour",
        "3 pages (1 colour, 2 grayscale)",
        "2",
        "yes",
        "0.90",
        "Colour pages cost 0.20 more on this printer.",
        "Print",
        "Cancel job",
    ):
        assert expected in shown, expected
    assert any(t.startswith("Answer within 9:") for t in shown)
    assert not delivery.acked  # an open prompt stays on the queue until it is closed
    assert_picture(screenshot(display, dialog, shots / "confirm-dialog.png"))
    find(dialog, "print").invoke()
    await pump(view)
    [reply] = app.transport.replies
    assert (reply.job_id, reply.user, reply.action, reply.account) == (
        p.job_id,
        "bob",
        "print",
        None,
    )
    assert not dialog.winfo_exists()
    await deliver(
        app,
        AnswerResult(
            job_id=p.job_id, outcome="authorized", amount=Decimal("0.90"), account="personal:bob"
        ),
    )
    assert delivery.acked


async def test_cancel_button_sends_cancel(gui):
    view, app = gui
    p = prompt()
    await deliver(app, p)
    find(view.dialogs[p.job_id], "cancel").invoke()
    await pump(view)
    assert [r.action for r in app.transport.replies] == ["cancel"]


async def test_apply_to_all_answers_every_waiting_job(gui):
    view, app = gui
    prompts = [prompt(document_name=f"doc-{i}.pdf") for i in range(3)]
    for p in prompts:
        await deliver(app, p)
    assert len([d for d in view.dialogs.values() if d.winfo_exists()]) == 3
    first = view.dialogs[prompts[0].job_id]
    find(first, "apply_all").invoke()
    find(first, "print").invoke()
    await pump(view)
    assert sorted(r.job_id for r in app.transport.replies) == sorted(p.job_id for p in prompts)
    assert not [d for d in view.dialogs.values() if d.winfo_exists()]


async def test_account_dialog_lists_recent_first_filters_and_sends_the_choice(gui, display, shots):
    view, app = gui
    app.model.recent.used("shared:initech")
    p = prompt(kind="choose_account", accounts=SHARED, allow_pin=True, copies=1, duplex=False)
    await deliver(app, p)
    dialog = view.dialogs[p.job_id]
    assert isinstance(dialog, AccountDialog)
    listbox = find(dialog, "accounts")
    assert paths(listbox) == ["research/initech", "clients/acme", "clients/globex"]
    assert dialog.mode.get() == "list"  # --default-selection list
    shown = texts(dialog)
    assert "Charge my personal account" in shown and "Charge a shared account:" in shown
    assert "Charge a shared account with its PIN:" in shown
    find(dialog, "search").insert(0, "glob")
    await pump(view)
    assert paths(listbox) == ["clients/globex"]
    find(dialog, "comment").insert(0, "project X")
    find(dialog, "print").invoke()
    await pump(view)
    [reply] = app.transport.replies
    assert (reply.account, reply.comment, reply.pin) == ("shared:globex", "project X", None)
    assert app.model.recent.accounts[0] == "shared:globex"


async def test_pin_choice_and_a_refusal_shown_in_the_dialog(gui, display, shots):
    view, app = gui
    p = prompt(kind="choose_account", accounts=SHARED[:1], allow_pin=True)
    await deliver(app, p)
    dialog = view.dialogs[p.job_id]
    dialog.mode.set("pin")
    find(dialog, "print").invoke()  # nothing typed: the dialog says what is missing
    await pump(view)
    assert "Type the account's name or code and its PIN." in texts(dialog)
    assert app.transport.replies == []
    find(dialog, "pin_account").insert(0, "shared:secret")
    find(dialog, "pin").insert(0, "1234")
    find(dialog, "print").invoke()
    await pump(view)
    [reply] = app.transport.replies
    assert (reply.account, reply.pin) == ("shared:secret", "1234")
    # The server refuses (wrong PIN): the dialog comes back with the reason.
    await deliver(app, AnswerResult(job_id=p.job_id, outcome="refused", reason="wrong PIN"))
    await pump(view)
    again = view.dialogs[p.job_id]
    assert again.winfo_exists() and "wrong PIN" in texts(again)
    assert_picture(screenshot(display, again, shots / "account-dialog-refused.png"))


async def test_prompt_closed_by_the_server_closes_its_dialog(gui):
    view, app = gui
    p = prompt()
    delivery = await deliver(app, p)
    closed = PromptClosed(
        job_id=p.job_id,
        document_name=p.document_name,
        outcome="cancelled",
        reason="no answer before the job's deadline",
    )
    await deliver(app, closed)
    assert not view.dialogs.get(p.job_id)
    assert delivery.acked


MESSAGES = [
    (
        "low-credit",
        LowBalanceNotice(balance=Decimal("0.80"), available=Decimal("0.80"), threshold=Decimal(1)),
        "Low credit",
        "Low credit: your available balance is 0.80 (below 1). "
        "Ask for a top-up before your next job.",
    ),
    (
        "job-denied",
        DeniedNotice(
            job_id=uuid.uuid4(),
            document_name="poster.pdf",
            printer="lab-colour",
            reason="not enough credit: 4.20 needed, 0.80 available",
        ),
        "Job denied",
        'Denied "poster.pdf" on lab-colour: not enough credit: 4.20 needed, 0.80 available',
    ),
    (
        "job-printed",
        PrintedNotice(
            job_id=uuid.uuid4(),
            document_name="notes.pdf",
            printer="lab-1",
            sides=4,
            copies=1,
            cost=Decimal("0.40"),
            balance=Decimal("11.60"),
        ),
        "Job printed",
        'Printed "notes.pdf" on lab-1: 4 pages, 0.40. Balance 11.60',
    ),
    (
        "broadcast",
        BroadcastNotice(text="The printers in room 2 are down until noon.", sender="IT"),
        "Message from IT",
        "The printers in room 2 are down until noon.",
    ),
]


@pytest.mark.parametrize(
    ("name", "message", "title", "text"), MESSAGES, ids=[m[0] for m in MESSAGES]
)
async def test_messages_show_in_a_window_without_a_notification_service(
    gui, display, shots, name, message, title, text
):
    view, app = gui
    await deliver(app, message)
    await asyncio.sleep(0.05)
    await pump(view)
    [window] = view.messages
    assert isinstance(window, MessageWindow)
    shown = texts(window)
    assert title in shown and text in shown
    assert_picture(screenshot(display, window, shots / f"message-{name}.png"))
    find(window, "ok").invoke()
    assert not window.winfo_exists()


async def test_notifier_degrades_without_a_notification_service(monkeypatch):
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
    notifier = Notifier(enabled=True)
    assert await notifier.available() is False
    assert await notifier.send("Low credit", "top up") is False
    assert await Notifier(enabled=False).send("x", "y") is False


@pytest.mark.parametrize("silent", [False, True])
async def test_connection_trouble_popup_unless_silent(display, tmp_path, silent):
    options = Options(login="bob", url="amqp://localhost/", silent=silent)
    view = TkView(options, notifier=Notifier(enabled=False))
    try:
        view.status("disconnected", "cannot reach the server: refused")
        await pump(view)
        assert view.state.cget("text") == "not connected - retrying"
        if silent:
            assert view.connection_popup is None
        else:
            assert "cannot reach the server: refused\nRetrying…" in texts(view.connection_popup)
        view.status("connected", "bob")
        await pump(view)
        assert view.state.cget("text") == "connected" and view.connection_popup is None
    finally:
        view.root.destroy()


async def test_hidden_balance_window(display):
    view = TkView(Options(login="bob", url="amqp://localhost/", hide_balance=True))
    try:
        await pump(view)
        assert view.root.state() == "withdrawn"
    finally:
        view.root.destroy()


async def test_the_identity_question_heads_the_dialog_in_red(gui, display, shots):
    view, app = gui
    question = "Did you print 'Quarterly report.pdf' from 10.0.0.7 at 14:02?"
    p = prompt(messages=[question, "Colour pages cost 0.20 more on this printer."])
    await deliver(app, p)
    dialog = view.dialogs[p.job_id]
    label = find(dialog, "identity_question")
    assert label is not None and str(label.cget("text")).startswith(question)
    assert str(label.cget("foreground")) == "#b00020"
    shown = texts(dialog)
    assert sum(question in t for t in shown) == 1  # not repeated as a note
    assert "Colour pages cost 0.20 more on this printer." in shown
    # The popup is that question: its title and its buttons say so.
    assert dialog.title() == "Did you print this?"
    assert find(dialog, "heading").cget("text") == "Is this print job yours?"
    assert find(dialog, "print").cget("text") == "Yes, print it"
    assert find(dialog, "cancel").cget("text") == "No, cancel it"
    assert_picture(screenshot(display, dialog, shots / "identity-question-dialog.png"))
    find(dialog, "cancel").invoke()
    await pump(view)
    [reply] = app.transport.replies
    assert (reply.job_id, reply.action) == (p.job_id, "cancel")


CODED = [
    PromptAccount(
        account="personal:bob", path="bob", charge_rate=Decimal(1), available=Decimal("4.20")
    ),
    PromptAccount(account="shared:acme", path="clients/acme", charge_rate=Decimal(1), code="C-100"),
    PromptAccount(
        account="shared:globex",
        path="clients/globex",
        charge_rate=Decimal(1),
        code="C-200",
        available=Decimal("310.50"),
    ),
    PromptAccount(
        account="shared:initech", path="research/initech", charge_rate=Decimal(1), code="R-7"
    ),
]


def row(tree, account: str) -> tuple:
    return tuple(tree.item(account, "values"))


async def test_favourites_codes_balances_and_the_waiting_count(gui, display, shots, tmp_path):
    view, app = gui
    prompts = [
        prompt(kind="choose_account", accounts=CODED, document_name=f"chapter-{i}.pdf")
        for i in range(3)
    ]
    await deliver(app, prompts[0])
    dialog = view.dialogs[prompts[0].job_id]
    tree = find(dialog, "accounts")
    box = find(dialog, "apply_all")
    # One job waits: nothing else to apply the answer to.
    assert box.cget("text") == "Apply to all my waiting jobs (1)"
    assert str(box.cget("state")) == "disabled"
    for p in prompts[1:]:
        await deliver(app, p)
    assert box.cget("text") == "Apply to all my waiting jobs (3)"
    assert str(box.cget("state")) == "normal"
    # Codes, and the balance only of the account that shows it; the user's own available.
    assert row(tree, "shared:globex") == ("", "clients/globex", "C-200", "310.50")
    assert row(tree, "shared:acme") == ("", "clients/acme", "C-100", "")
    assert "Charge my personal account (available 4.20)" in texts(dialog)
    # A favourite comes first, starred, and stays one for the next popup (on disk).
    tree.selection_set("shared:initech")
    await pump(view)
    assert find(dialog, "favourite").cget("text") == "Add to favourites"
    find(dialog, "favourite").invoke()
    await pump(view)
    assert paths(tree) == ["research/initech", "clients/acme", "clients/globex"]
    assert row(tree, "shared:initech")[0] == "★"
    assert tree.selection() == ("shared:initech",)
    assert find(dialog, "favourite").cget("text") == "Remove from favourites"
    stored = Favourites.load(tmp_path / "config" / "favourites.json")
    assert stored.accounts == ["shared:initech"]
    dialog.lift()  # the three popups open at one place: this one on top for the picture
    await pump(view)
    assert_picture(screenshot(display, dialog, shots / "account-dialog.png"))
    # Search by code, in any case.
    find(dialog, "search").insert(0, "c-2")
    await pump(view)
    assert paths(tree) == ["clients/globex"]
    # A job closed by the server leaves the count.
    await deliver(
        app,
        PromptClosed(
            job_id=prompts[2].job_id, document_name="x", outcome="cancelled", reason="by admin"
        ),
    )
    assert box.cget("text") == "Apply to all my waiting jobs (2)"
    box.invoke()
    find(dialog, "print").invoke()
    await pump(view)
    assert sorted(r.job_id for r in app.transport.replies) == sorted(p.job_id for p in prompts[:2])
    assert {r.account for r in app.transport.replies} == {"shared:globex"}
    # Unmarked, it is an ordinary account again.
    assert app.model.toggle_favourite("shared:initech") is False
    assert Favourites.load(tmp_path / "config" / "favourites.json").accounts == []


async def test_the_popups_in_german_on_a_german_desktop(display, shots, tmp_path, monkeypatch):
    from platen.client import i18n

    for var in ("LANGUAGE", "LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("LANG", "de_DE.UTF-8")
    i18n.reset()
    view = TkView(Options(login="bob", url="amqp://localhost/", disable_notifications=True))
    app = ClientApp(ClientModel("bob", favourites=Favourites()), view, Sent())
    view.app = app
    try:
        assert "Guthaben" in texts(view.root)
        p = prompt(kind="choose_account", accounts=CODED, allow_pin=True)
        await deliver(app, p)
        dialog = view.dialogs[p.job_id]
        assert dialog.title() == "Abzurechnendes Konto wählen"
        shown = texts(dialog)
        for expected in (
            "Welches Konto soll diesen Auftrag bezahlen?",
            "Mein persönliches Konto belasten (verfügbar 4.20)",
            "Ein gemeinsames Konto belasten:",
            "Suche (Name oder Code)",
            "Für alle meine wartenden Aufträge (1)",
            "3 Seiten (1 farbig, 2 schwarzweiß)",
            "Drucken",
            "Auftrag abbrechen",
        ):
            assert expected in shown, expected
        assert_picture(screenshot(display, dialog, shots / "account-dialog-de.png"))
        # The identity question, written in English by the server, asked in German.
        question = "Did you print 'Quarterly report.pdf' from 10.0.0.7 at 14:02?"
        q = prompt(messages=[question])
        await deliver(app, q)
        label = find(view.dialogs[q.job_id], "identity_question")
        assert str(label.cget("text")).startswith(
            "Haben Sie „Quarterly report.pdf“ um 14:02 von 10.0.0.7 aus gedruckt?"
        )
        assert find(view.dialogs[q.job_id], "print").cget("text") == "Ja, drucken"
    finally:
        view.root.destroy()
        monkeypatch.undo()
        i18n.reset()


async def test_the_list_is_chosen_by_the_user_not_by_filling_it(display, tmp_path):
    view = TkView(Options(login="bob", url="amqp://localhost/", disable_notifications=True))
    app = ClientApp(ClientModel("bob", favourites=Favourites()), view, Sent())
    view.app = app
    try:
        p = prompt(kind="choose_account", accounts=CODED)
        await deliver(app, p)
        dialog = view.dialogs[p.job_id]
        find(dialog, "search").insert(0, "c-")  # the list refills and selects its first
        await pump(view)
        assert dialog.mode.get() == "personal"  # --default-selection personal stays
        find(dialog, "accounts").event_generate("<FocusIn>")
        await pump(view)
        assert dialog.mode.get() == "list"
    finally:
        view.root.destroy()


async def test_options_from_the_server_change_the_running_window(gui, display):
    view, app = gui
    await deliver(app, BalanceNotice(balance=Decimal("12.50"), available=Decimal("12.50")))
    png = io.BytesIO()
    Image.new("RGB", (24, 24), "#aa0000").save(png, "PNG")
    logo = base64.b64encode(png.getvalue()).decode()
    options = {
        "title": "Library printing",
        "colour": "#aa0000",
        "logo": logo,
        "details_url": "https://print.example.org/",
        "details_text": "Prices and help",
        "hide_balance": "true",
        "allow_quit": "false",
    }
    await deliver(app, ClientOptionsNotice(revision=1, options=options))
    assert view.root.title() == "Library printing - bob"
    assert view.root.state() == "withdrawn"
    assert str(find(view.root, "balance").cget("foreground")) == "#aa0000"
    assert find(view.root, "details").cget("text") == "Prices and help"
    assert view._logo_image is not None and view._logo_image.width() == 24
    # Quitting is not allowed: closing the window leaves the client running.
    view.quit()
    assert not view._closed
    # Allowed again: the balance window comes back with the balance it kept.
    await deliver(app, ClientOptionsNotice(revision=2, options={"hide_balance": "false"}))
    assert view.root.state() == "normal" and view.root.title() == "Platen - bob"
    assert find(view.root, "balance").cget("text") == "12.50"
    assert not find(view.root, "details").winfo_ismapped()
    view.quit()
    assert view._closed
