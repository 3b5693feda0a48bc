"""Marks: log fields that follow a job from service to service.

Some facts about a job belong on every log line about it, in every service, yet are no
part of any message's meaning: today one, that the job came from a `trusted` queue (its
payer was taken on the print server's word, so an auditor must be able to find each of
its lines). Rather than retype such a field into every event, a service *marks* the job
while handling a message (`ctx.mark(identity="trusted")`); the mark is bound on that
handler's log lines and travels in a header on every message the handler emits, so the
next service's lines carry it too, and so on down the chain.

A mark is a log field, never an input to a decision. Even so, only services may set one:
marks are read from deliveries that came through the services' exchanges, never from a
desktop's reply or a command a print server may send (the broker lets nothing but a
service write to `platen.events`, and nothing but services and `platenctl` send the other
commands), and only known keys with known values pass.
"""

from __future__ import annotations

import json

from aio_pika.abc import AbstractIncomingMessage

from platen.events.routing import COMMANDS, EVENTS
from platen.messaging.codec import HEADER_MARKS
from platen.messaging.senders import PRINT_SERVER_COMMANDS

# Every mark there is, with the values it may take.
KNOWN: dict[str, frozenset[str]] = {"identity": frozenset({"trusted"})}


def allowed(marks: dict[str, object]) -> dict[str, str]:
    """The marks among `marks` that are known, with a known value; the rest dropped."""
    return {
        key: value
        for key, value in marks.items()
        if isinstance(value, str) and value in KNOWN.get(key, ())
    }


def checked(fields: dict[str, str]) -> dict[str, str]:
    """`fields` as marks a handler may set; ValueError naming any that are not."""
    accepted = allowed(fields)
    if accepted != fields:
        raise ValueError(f"unknown marks: {sorted(set(fields) - set(accepted))}")
    return accepted


def of_delivery(raw: AbstractIncomingMessage) -> dict[str, str]:
    """The marks a delivery carries, if its sender may mark (a service)."""
    from_service = raw.exchange == EVENTS or (
        raw.exchange == COMMANDS and raw.routing_key not in PRINT_SERVER_COMMANDS
    )
    if not from_service:
        return {}
    value = (raw.headers or {}).get(HEADER_MARKS)
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    if not isinstance(value, str) or len(value) > 200:
        return {}
    try:
        parsed = json.loads(value)
    except ValueError:
        return {}
    return allowed(parsed) if isinstance(parsed, dict) else {}


def encode(marks: dict[str, str]) -> str | None:
    """The header value (and outbox column) for `marks`; None when there are none."""
    return json.dumps(marks, sort_keys=True) if marks else None
