"""The question an `unverified` job's user is asked (`print_identity`), with no pydantic:
pricing writes it, the desktop client recognises it and asks it in its user's language."""

from __future__ import annotations

import re

# The question an `unverified` job's user is asked (first among the job's messages), in
# the words pricing writes and the desktop client shows above everything else.
IDENTITY_QUESTION = "Did you print '{document}' from {host} at {time}?"
_QUESTION_START = IDENTITY_QUESTION.split("'", 1)[0]


def is_identity_question(text: str) -> bool:
    return text.startswith(_QUESTION_START)


# The question's parts, so that a desktop can ask it in its user's language. The document
# name may hold anything, quotes included: the host and time are matched from the end.
_QUESTION_PARTS = re.compile(
    r"Did you print '(?P<document>.*)' from (?P<host>.+) at (?P<time>[0-9:]+)\?"
)


def parse_identity_question(text: str) -> dict[str, str] | None:
    """{"document", "host", "time"} of an identity question, or None for another text."""
    found = _QUESTION_PARTS.fullmatch(text)
    return found.groupdict() if found else None
