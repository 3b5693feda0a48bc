"""Reading the user's answers typed in a terminal or sent by a script. Pure functions.

JSON (one object per line, `--json`):
    {"job_id": "<id>", "action": "print" | "cancel", "account": "...", "pin": "...",
     "comment": "...", "apply_to_all": false}
Console (`--console`), where N is the number the console showed for the job:
    print N [account=ACCOUNT] [pin=PIN] [comment=TEXT...] [all]
    cancel N [all]
"""

from __future__ import annotations

import json
import shlex
import uuid
from dataclasses import dataclass

from platen.client.model import Choice

ACTIONS = ("print", "cancel")
JSON_KEYS = {"job_id", "action", "account", "pin", "comment", "apply_to_all"}


class BadAnswer(ValueError):
    """The line is not an answer; the message says what is wrong."""


@dataclass(frozen=True)
class Answer:
    job: uuid.UUID | int  # a job id (JSON) or the number the console showed
    choice: Choice
    apply_to_all: bool = False


def _text(data: dict, key: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise BadAnswer(f"{key} must be a string")
    return value or None


def parse_json(line: str) -> Answer:
    try:
        data = json.loads(line)
    except ValueError as exc:
        raise BadAnswer(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BadAnswer("an answer is a JSON object")
    unknown = sorted(set(data) - JSON_KEYS)
    if unknown:
        raise BadAnswer(f"unknown key(s): {', '.join(unknown)}")
    try:
        job = uuid.UUID(str(data.get("job_id")))
    except ValueError:
        raise BadAnswer("job_id must be the id of a waiting job") from None
    action = data.get("action")
    if action not in ACTIONS:
        raise BadAnswer("action must be print or cancel")
    apply_to_all = data.get("apply_to_all", False)
    if not isinstance(apply_to_all, bool):
        raise BadAnswer("apply_to_all must be true or false")
    choice = Choice(action, _text(data, "account"), _text(data, "pin"), _text(data, "comment"))
    return Answer(job, choice, apply_to_all)


def parse_console(line: str) -> Answer:
    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise BadAnswer(str(exc)) from None
    if len(words) < 2 or words[0] not in ACTIONS or not words[1].isdigit():
        raise BadAnswer("type: print N [account=A] [pin=P] [comment=TEXT] [all], or cancel N")
    fields: dict[str, str] = {}
    apply_to_all = False
    for word in words[2:]:
        if word == "all":
            apply_to_all = True
        elif "=" in word and word.split("=", 1)[0] in ("account", "pin", "comment"):
            key, value = word.split("=", 1)
            fields[key] = value
        else:
            raise BadAnswer(f"what is {word!r}? (account=, pin=, comment= or all)")
    choice = Choice(words[0], fields.get("account"), fields.get("pin"), fields.get("comment"))
    return Answer(int(words[1]), choice, apply_to_all)
