"""The Tk client on the real system, under Xvfb: its buttons drive real jobs."""

from __future__ import annotations

import asyncio
import gc
import json
from decimal import Decimal as D

import pytest

from platen.client import app as client_app
from platen.client.config import Options
from platen.client.model import ClientModel
from platen.client.recent import Favourites, RecentAccounts
from platen.client.tkview import TkView
from platen.client.transport import Transport
from platen.testing.documents import make_pdf
from tests.e2e.clientproc import desktop_url
from tests.e2e.helpers import find, ledger_problems, submit_jobs, wait_settled


@pytest.fixture
async def gui_client(system, display, desktops, tmp_path):
    started = []

    async def start(login: str):
        url = desktop_url(desktops(login))  # signed in as the user's own broker identity
        options = Options(login=login, url=url, disable_notifications=True)
        view = TkView(options)
        model = ClientModel(
            login,
            recent=RecentAccounts.load(tmp_path / "recent.json"),
            favourites=Favourites.load(tmp_path / "favourites.json"),
        )
        app = client_app.ClientApp(model, view)
        transport = Transport(url, login, app.on_delivery, view.status)
        app.transport = transport
        task = asyncio.create_task(client_app.run(app, transport))
        started.append((view, task))
        return view

    yield start
    for view, task in started:
        view.quit()
        await asyncio.wait_for(task, 10)
    # Free the Tk objects now, in the main thread: Tcl aborts the process if the garbage
    # collector frees them later in another thread (the services start from one).
    started.clear()
    gc.collect()


async def until(predicate, timeout: float = 60):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not (result := predicate()):
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.1)
    return result


def state_of(system, job) -> str | None:
    jobs = json.loads(system.ctl("jobs", "--json").stdout)
    return next((j["state"] for j in jobs if j["job_id"] == str(job)), None)


async def wait_state(system, job, state: str, timeout: float = 60) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (now := await asyncio.to_thread(state_of, system, job)) != state:
        assert loop.time() < deadline, f"job is {now}, not {state}"
        await asyncio.sleep(0.5)


async def test_print_button_prints_and_the_balance_window_follows(system, gui_client):
    """Also: the administrator's client options reach the running client (set before it
    started: sent on its hello; set while it runs: pushed), with no restart."""
    system.ctl("printer", "add", "lab-1", "--price-per-page", "0.10")
    system.ctl("user", "add", "bob", "--balance", "5.00", "--group", "staff")
    system.ctl("user", "set", "bob", "--selection", "confirm")
    system.ctl("client", "set", "title", "Library printing")
    system.ctl("client", "set", "--group", "staff", "colour", "#aa0000")
    view = await gui_client("bob")
    await until(lambda: view.state.cget("text") == "connected")
    await until(lambda: view.root.title() == "Library printing - bob")
    await until(lambda: str(view.balance.cget("foreground")) == "#aa0000")
    [job] = await submit_jobs(system.amqp_url, "bob", "lab-1", make_pdf(3), 1)
    dialog = await until(lambda: view.dialogs.get(job))
    assert find(dialog, "fact_cost").cget("text") == "0.30"
    find(dialog, "print").invoke()
    await wait_state(system, job, "printed")
    await until(lambda: view.balance.cget("text") == "4.70")
    assert D(system.user_json("bob")["balance"]) == D("4.70")
    # Hidden site-wide while the client runs: the balance window goes, the title stays.
    system.ctl("client", "set", "hide_balance", "true")
    system.ctl("client", "set", "title", "Print desk")
    await until(lambda: view.root.title() == "Print desk - bob")
    assert view.root.state() == "withdrawn" and view.app.model.options.hide_balance
    assert await ledger_problems(system.database_url) == []


async def test_cancel_button_cancels_and_the_account_list_charges_the_choice(system, gui_client):
    system.ctl("printer", "add", "lab-1", "--price-per-page", "0.10")
    system.ctl("user", "add", "eve", "--balance", "5.00")
    system.ctl("user", "set", "eve", "--selection", "choose")
    system.ctl("account", "add", "acme", "--code", "AC-1", "--show-balance")
    system.ctl("account", "add", "hidden", "--code", "HI-2")
    system.ctl("topup", "shared:acme", "10")
    for account in ("acme", "hidden"):
        system.ctl("account", "grant", account, "--user", "eve")
    view = await gui_client("eve")
    [drop, keep] = await submit_jobs(system.amqp_url, "eve", "lab-1", make_pdf(2), 2)
    dialog = await until(lambda: view.dialogs.get(drop))
    await until(lambda: view.dialogs.get(keep))
    # Both jobs wait: "apply to all" counts them.
    assert find(dialog, "apply_all").cget("text") == "Apply to all my waiting jobs (2)"
    find(dialog, "cancel").invoke()
    await wait_state(system, drop, "cancelled")
    dialog = view.dialogs[keep]
    assert find(dialog, "apply_all").cget("text") == "Apply to all my waiting jobs (1)"
    dialog.mode.set("list")
    tree = find(dialog, "accounts")
    # The codes the admin set, and the balance only of the account that shows it.
    assert [tuple(tree.item(r, "values")) for r in tree.get_children()] == [
        ("", "acme", "AC-1", "10.00"),
        ("", "hidden", "HI-2", ""),
    ]
    tree.selection_set("shared:hidden")
    find(dialog, "favourite").invoke()
    assert tree.get_children()[0] == "shared:hidden"  # a favourite comes first
    find(dialog, "search").insert(0, "ac-1")  # by code
    await until(lambda: tree.get_children() == ("shared:acme",))
    assert tree.selection() == ("shared:acme",)
    find(dialog, "print").invoke()
    await wait_state(system, keep, "printed")
    await wait_settled(system, keep)  # the ledger charges it after job-capture's "printed"
    acme = json.loads(system.ctl("account", "show", "acme", "--json").stdout)
    assert D(acme["balance"]) == D("9.80")
    assert D(system.user_json("eve")["balance"]) == D("5.00")
    # The tray's "recent jobs" (here from the balance window's client, no tray running)
    # lists both as the server told them, in whatever order they arrived.
    view.show_recent_jobs()

    def outcomes() -> set[tuple]:
        return {row[1:] for row in view.recent_window.rows()}  # printer, outcome, cost

    await until(lambda: outcomes() == {("lab-1", "printed", "0.20"), ("lab-1", "cancelled", "")})
