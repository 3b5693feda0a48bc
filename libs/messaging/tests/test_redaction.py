"""What a dead-lettered message keeps: never a secret (pure logic)."""

import json

from platen.events.routing import COMMANDS, DESKTOP_REPLIES
from platen.messaging.redaction import REDACTED, for_dead_letter


def test_secret_fields_are_redacted_wherever_they_are():
    body = json.dumps(
        {"job_id": "j", "pin": "4711", "extra": {"password": "hunter2", "ok": [{"pin": "1"}]}}
    ).encode()
    kept = for_dead_letter(body, DESKTOP_REPLIES)
    assert b"4711" not in kept and b"hunter2" not in kept
    parsed = json.loads(kept)
    assert parsed["pin"] == REDACTED and parsed["extra"]["password"] == REDACTED
    assert parsed["extra"]["ok"] == [{"pin": REDACTED}]
    assert parsed["job_id"] == "j"


def test_a_body_without_secrets_is_kept_byte_for_byte():
    body = b'{"job_id": "nope",  "pin": null}'
    assert for_dead_letter(body, DESKTOP_REPLIES) == body


def test_an_unreadable_body_from_a_desktop_is_replaced_by_its_size_and_digest():
    kept = for_dead_letter(b"pin 4711 garbage", DESKTOP_REPLIES)
    assert b"4711" not in kept and b"16 bytes" in kept and b"sha256" in kept


def test_an_unreadable_body_from_a_service_is_kept():
    assert for_dead_letter(b"\x00garbage", COMMANDS) == b"\x00garbage"
