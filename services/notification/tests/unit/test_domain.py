"""Prompts, answers and identities own their transitions (pure, no I/O)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from platen.notification.domain import (
    Answer,
    AnswerRates,
    DesktopIdentity,
    PrintServerIdentity,
    Prompt,
    Refused,
    Take,
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


def test_answers_beyond_the_burst_are_dropped_until_the_bucket_refills():
    rates = AnswerRates(rate=2, burst=3)
    assert [rates.take("mal", 0.0) for _ in range(5)] == [
        Take.ALLOWED,
        Take.ALLOWED,
        Take.ALLOWED,
        Take.FIRST_DROPPED,  # the user is told this once
        Take.DROPPED,
    ]
    assert rates.take("mal", 0.5) is Take.ALLOWED  # one token a half second
    assert rates.take("mal", 0.5) is Take.DROPPED  # the same flood: not told again
    assert rates.take("bob", 0.5) is Take.ALLOWED  # every login has its own bucket
    assert [rates.take("mal", 10.0) for _ in range(4)][-1] is Take.FIRST_DROPPED  # a new flood
    assert rates.tell("mal") and not rates.tell("mal") and not rates.tell("bob")


def test_buckets_that_refilled_are_forgotten_when_there_are_many():
    rates = AnswerRates(rate=1, burst=2, keep=2)
    rates.take("a", 0.0)
    rates.take("b", 5.0)
    rates.take("c", 5.0)  # a's bucket is full again by now: forgotten; b's is not
    assert set(rates.buckets) == {"b", "c"}
