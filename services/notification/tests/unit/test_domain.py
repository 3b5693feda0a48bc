"""Prompts, answers and identities own their transitions (pure, no I/O)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from platen.notification.domain import (
    Answer,
    DesktopIdentity,
    PrintServerIdentity,
    Prompt,
    Refused,
)

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def prompt(**kw) -> Prompt:
    return Prompt(uuid.uuid4(), "bob", "a.pdf", NOW + timedelta(minutes=10), **kw)


def test_a_prompt_is_open_until_closed_once():
    p = prompt()
    assert p.answer_problem("bob", NOW) is None
    assert p.close() is True
    assert p.state == "closed"
    assert p.close() is False
    assert "no longer waiting" in p.answer_problem("bob", NOW)


def test_only_the_jobs_user_may_answer_and_only_before_the_deadline():
    p = prompt()
    assert "someone else" in p.answer_problem("eve", NOW)
    assert not p.expired(NOW + timedelta(minutes=9))
    assert p.expired(NOW + timedelta(minutes=10))
    assert "deadline has passed" in p.answer_problem("bob", NOW + timedelta(minutes=10))


def test_a_prompts_ttl_is_the_time_left_and_none_when_too_short():
    p = prompt()
    assert p.ttl_ms(NOW) == 600_000
    assert p.ttl_ms(NOW + timedelta(minutes=10) - timedelta(milliseconds=999)) is None


def test_an_answer_is_settled_once():
    a = Answer("cmd-1", uuid.uuid4(), "bob", "print")
    a.settle("authorized")
    assert a.outcome == "authorized"
    with pytest.raises(Refused):
        a.settle("refused")
    assert a.outcome == "authorized"


def test_a_desktop_identity_is_revoked_and_restored_and_only_enabled_gets_a_credential():
    identity = DesktopIdentity("bob")
    identity.issue_credential()
    identity.revoke()
    assert identity.enabled is False
    with pytest.raises(Refused, match="bob is disabled"):
        identity.issue_credential()
    identity.restore()
    assert identity.enabled is True
    identity.issue_credential()


def test_a_print_server_is_removed_once_and_reissued_after():
    server = PrintServerIdentity("ps1", "platen-print-server.ps1")
    server.remove()
    assert server.removed is True
    with pytest.raises(Refused, match="no print server named 'ps1'"):
        server.remove()
    server.reissue("platen-print-server.ps1")
    assert server.removed is False
