"""`platenctl account add/set --code`: a code the ledger would refuse is refused here first,
with what a code may hold, and nothing is sent."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from platen.ctl import ledger
from platen.ctl.main import app


@pytest.mark.parametrize("command", [["account", "add", "lab"], ["account", "set", "lab"]])
@pytest.mark.parametrize("code", ["has space", "-dash-first", "x" * 33, "é1"])
def test_a_bad_code_is_refused_before_anything_is_sent(monkeypatch, command, code):
    sent = []
    monkeypatch.setattr(ledger, "call", sent.append)
    result = CliRunner().invoke(app, [*command, "--code", code])
    assert result.exit_code == 1
    assert "letters, digits" in result.output
    assert sent == []


def test_a_good_code_and_the_balance_flag_reach_the_command(monkeypatch):
    sent = []

    def call(cmd):
        sent.append(cmd)
        raise SystemExit(0)  # what the ledger answers is not this test's subject

    monkeypatch.setattr(ledger, "call", call)
    CliRunner().invoke(app, ["account", "add", "lab", "--code", "L-7.a_1", "--show-balance"])
    CliRunner().invoke(app, ["account", "set", "lab", "--clear-code", "--hide-balance"])
    add, change = sent
    assert (add.code, add.balance_visible) == ("L-7.a_1", True)
    assert (change.code, change.clear_code, change.balance_visible) == (None, True, False)
