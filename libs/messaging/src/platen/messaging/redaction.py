"""What a dead-lettered message may keep: never a secret.

A dead-letter queue keeps a message for days, for an administrator to read; a PIN or a
password in it would sit there in clear. So a message is dead-lettered with the values of
its secret fields replaced, and a body that cannot be read as JSON is kept whole only when
a service or `platenctl` sent it: from a desktop, where a user may have typed anything
(a PIN in a broken answer), it is replaced by its size and digest.
"""

from __future__ import annotations

import hashlib
import json

from platen.events.routing import DESKTOP_REPLIES

# Field names that hold a secret anywhere in the contract (PINs, issued passwords).
SECRET_FIELDS = frozenset({"pin", "password", "secret"})
REDACTED = "[redacted]"


def _redact(value: object) -> object:
    if isinstance(value, dict):
        return {
            k: (REDACTED if k in SECRET_FIELDS and v is not None else _redact(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_redact(v) for v in value]
    return value


def for_dead_letter(body: bytes, exchange: str | None) -> bytes:
    """The body to keep in a dead-letter queue in place of `body`."""
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict | list):
        redacted = _redact(parsed)
        return body if redacted == parsed else json.dumps(redacted).encode()
    if exchange == DESKTOP_REPLIES:
        digest = hashlib.sha256(body).hexdigest()
        return f"[a desktop's unreadable message of {len(body)} bytes, sha256 {digest}]".encode()
    return body
