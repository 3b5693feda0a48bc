"""The notification service's rules for prompts and replies (pure, no broker)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from platen.notification.domain import Prompt, Sender, prompt_problem, sender_problem, ttl_ms

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def test_ttl_is_the_time_left_to_the_deadline():
    assert ttl_ms(NOW + timedelta(minutes=10), NOW) == 600_000
    assert ttl_ms(NOW + timedelta(seconds=1.5), NOW) == 1500


@pytest.mark.parametrize("left", [timedelta(0), timedelta(milliseconds=999), timedelta(-5)])
def test_no_ttl_for_a_prompt_nobody_can_answer(left):
    assert ttl_ms(NOW + left, NOW) is None


@pytest.mark.parametrize(
    ("key", "user_id", "claimed", "problem"),
    [
        ("user.bob.answer", None, "bob", None),
        ("user.bob.answer", "bob", "bob", None),
        ("user.mallory.answer", None, "bob", "sent under mallory's routing key"),
        ("user.bob.answer", "mallory", "bob", "sent by broker user mallory"),
        ("bob.answer", None, "bob", "is not user.<login>.<kind>"),
        ("user..answer", None, "bob", "is not user.<login>.<kind>"),
        ("user.bob.answer.extra", None, "bob", "is not user.<login>.<kind>"),
    ],
)
def test_sender_must_be_the_user_the_reply_speaks_for(key, user_id, claimed, problem):
    found = sender_problem(Sender(key, user_id), claimed)
    assert (found is None) if problem is None else (problem in found)


def test_user_id_can_be_required():
    assert "no user_id" in sender_problem(
        Sender("user.bob.answer", None), "bob", require_user_id=True
    )
    assert sender_problem(Sender("user.bob.answer", "bob"), "bob", require_user_id=True) is None


def row(user_login="bob", state="open", expires_at=NOW + timedelta(minutes=1)):
    return Prompt(uuid.uuid4(), user_login, "a.pdf", expires_at, state)


@pytest.mark.parametrize(
    ("prompt", "problem"),
    [
        (row(), None),
        (None, "not waiting"),
        (row(user_login="eve"), "someone else"),
        (row(state="closed"), "no longer waiting"),
        (row(expires_at=NOW), "deadline has passed"),
    ],
)
def test_answers_only_to_the_users_own_open_prompts(prompt, problem):
    found = prompt_problem(prompt, "bob", NOW)
    assert (found is None) if problem is None else (problem in found)
