"""Deciding about prompts and replies: pure rules, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from platen.events.routing import login_of_key

# A prompt with less time left than this is not worth showing: nobody can answer it.
MIN_TTL_MS = 1000


def ttl_ms(expires_at: datetime, now: datetime) -> int | None:
    """The per-message TTL that makes a prompt vanish from the queue at its deadline, or
    None when the deadline is (as good as) past."""
    left = int((expires_at - now).total_seconds() * 1000)
    return left if left >= MIN_TTL_MS else None


@dataclass(frozen=True)
class Sender:
    """Who a reply says it is from, by each of the ways the broker tells us."""

    routing_key: str
    user_id: str | None


def sender_problem(
    sender: Sender, claimed_user: str, *, require_user_id: bool = False
) -> str | None:
    """Why a reply claiming to be from `claimed_user` cannot be trusted, or None.

    The routing key must be `user.<claimed_user>.<kind>` (topic permissions let a desktop
    publish only its own keys). When the reply carries the AMQP `user_id`, which RabbitMQ
    validates against the connection's user, it must name the same user; with
    `require_user_id` (every desktop signs in as its own broker user) it must be there.
    """
    login = login_of_key(sender.routing_key)
    if login is None:
        return f"routing key {sender.routing_key!r} is not user.<login>.<kind>"
    if login != claimed_user:
        return f"reply for {claimed_user} sent under {login}'s routing key"
    if require_user_id and sender.user_id is None:
        return f"reply for {claimed_user} carries no user_id"
    if sender.user_id is not None and sender.user_id != claimed_user:
        return f"reply for {claimed_user} sent by broker user {sender.user_id}"
    return None


def prompt_problem(prompt, user: str, now: datetime) -> str | None:
    """Why an answer to `prompt` (a row, or None) is refused before reaching the ledger."""
    if prompt is None:
        return "this job is not waiting for an answer"
    if prompt["user_login"] != user:
        return "this job belongs to someone else"
    if prompt["state"] != "open":
        return "this job is no longer waiting for an answer"
    if now >= prompt["expires_at"]:
        return "too late: the job's deadline has passed"
    return None
