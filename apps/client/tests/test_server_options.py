"""Options from the server, narrowed by the desktop's own: the merge rules, and what the
presenter does with them (no window, no broker)."""

from __future__ import annotations

import base64
import uuid
from decimal import Decimal

from platen.client.config import Options, load
from platen.client.contract import (
    BalanceNotice,
    ClientOptionsNotice,
    LowBalanceNotice,
    PrintedNotice,
)
from platen.client.model import ApplyOptions, ClientModel, Notify, ShowBalance
from platen.client.serveroptions import effective

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 40


def local(*argv: str) -> Options:
    return load(["--user", "bob", "--amqp-url", "amqp://h/", *argv])


def test_the_desktop_cannot_show_a_balance_the_server_hides():
    assert effective({"hide_balance": "true"}, local()).hide_balance
    # The desktop hides it itself: hidden, whatever the server allows.
    assert effective({"hide_balance": "false"}, local("--hide-balance")).hide_balance
    assert not effective({}, local()).hide_balance


def test_the_desktop_may_forbid_quitting_the_server_allows_but_not_the_reverse():
    assert effective({"allow_quit": "true"}, local()).allow_quit
    assert not effective({"allow_quit": "true"}, local("--noquit")).allow_quit
    assert not effective({"allow_quit": "false"}, local()).allow_quit
    assert not effective({}, local("--noquit")).allow_quit


def test_a_preference_the_desktop_set_wins_else_the_servers_else_the_default():
    server = {"window_position": "10,20", "default_selection": "list"}
    mine = effective(server, local("--window-position", "bottom-left"))
    assert mine.window_position == "bottom-left" and mine.default_selection == "list"
    assert effective(server, local()).window_position == (10, 20)
    assert effective({}, local()).window_position == "top-right"


def test_branding_comes_from_the_server_and_a_bad_value_is_left_out():
    server = {
        "title": "Library",
        "colour": "#0a0",
        "logo": base64.b64encode(PNG).decode(),
        "details_url": "https://print.example.org/",
        "details_text": "Prices",
        "template.printed": "{document}: {cost}",
    }
    got = effective(server, local())
    assert (got.title, got.colour, got.logo) == ("Library", "#0a0", PNG)
    assert (got.details_url, got.details_text) == ("https://print.example.org/", "Prices")
    # What a tampered or newer server might send: skipped, never trusted.
    bad = effective(
        {
            "details_url": "file:///etc/passwd",
            "title": "<b>x</b>",
            "logo": base64.b64encode(b"#!/bin/sh").decode(),
            "run": "rm -rf ~",
            "template.printed": "{message.__class__}",
        },
        local(),
    )
    assert (bad.details_url, bad.title, bad.logo, bad.templates) == (None, None, None, {})


def notice(revision: int, **options: str) -> ClientOptionsNotice:
    return ClientOptionsNotice(revision=revision, options=options)


def test_a_notice_delivered_late_never_undoes_a_newer_one():
    model = ClientModel("bob", local=local())
    [applied] = model.receive(notice(7, title="New"))
    assert isinstance(applied, ApplyOptions) and applied.options.title == "New"
    assert model.receive(notice(6, title="Old")) == []
    assert model.receive(notice(7, title="Again")) == []
    assert model.options.title == "New"


def test_a_hidden_balance_is_kept_not_shown_and_shown_once_allowed():
    model = ClientModel("bob", local=local())
    balance = BalanceNotice(balance=Decimal("9.50"), available=Decimal("9.00"))
    model.receive(notice(1, hide_balance="true"))
    assert model.receive(balance) == [] and model.hides(balance)
    effects = model.receive(notice(2, hide_balance="false"))
    assert effects[-1] == ShowBalance("9.50", "9.00") and not model.hides(balance)
    # The desktop's own --hide-balance: nothing the server sends shows it.
    own = ClientModel("bob", local=local("--hide-balance"))
    own.receive(notice(1, hide_balance="false"))
    assert own.receive(balance) == []


def printed() -> PrintedNotice:
    return PrintedNotice(
        job_id=uuid.uuid4(),
        document_name="a.pdf",
        printer="lab",
        sides=1,
        copies=1,
        cost=Decimal("0.10"),
        balance=Decimal("9.90"),
    )


def test_templates_and_a_hidden_balance_shape_the_notifications():
    model = ClientModel("bob", local=local())
    [note] = model.receive(printed())
    assert "9.90" in note.text  # the default text tells the balance
    model.receive(notice(1, hide_balance="true"))
    [note] = model.receive(printed())
    assert isinstance(note, Notify) and "9.90" not in note.text and "0.10" in note.text
    low = LowBalanceNotice(balance=Decimal(1), available=Decimal(1), threshold=Decimal(2))
    assert "1" not in model.receive(low)[0].text
    model.receive(notice(2, **{"template.printed": "{document} cost {cost}, see the desk"}))
    [note] = model.receive(printed())
    assert note.text == "a.pdf cost 0.10, see the desk"


def test_noquit_and_what_the_desktop_set_itself_are_read_from_the_command_line():
    options = local("--noquit", "--default-selection", "pin")
    assert options.noquit and options.given == {"noquit", "default_selection"}
    assert local().given == frozenset()
