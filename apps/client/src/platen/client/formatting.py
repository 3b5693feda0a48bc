"""How each desktop message reads in a terminal, and as a JSON line. Pure functions."""

from __future__ import annotations

import json

from platen.events.base import Message
from platen.events.desktop import (
    AnswerResult,
    BalanceNotice,
    BroadcastNotice,
    DeniedNotice,
    JobPrompt,
    LowBalanceNotice,
    PrintedNotice,
    PromptClosed,
)
from platen.events.print_identity import is_identity_question


def pages(n: int) -> str:
    return f"{n} page{'s' if n != 1 else ''}"


def page_split(prompt: JobPrompt) -> str:
    """'3 pages (1 colour, 2 grayscale)' — the breakdown only when there is colour."""
    if prompt.color_sides:
        split = f"{prompt.color_sides} colour, {prompt.grayscale_sides} grayscale"
        return f"{pages(prompt.sides)} ({split})"
    return f"{pages(prompt.sides)} (grayscale)"


def identity_question(prompt: JobPrompt) -> str | None:
    """ "Did you print 'x' from HOST at 14:02?" when nothing proved the job is the user's:
    shown above everything else, since answering "print" makes them pay for it."""
    first = prompt.messages[0] if prompt.messages else ""
    return first if is_identity_question(first) else None


def prompt_lines(prompt: JobPrompt) -> list[str]:
    """What a prompt says, one fact per line (shared by the console and the dialogs); the
    identity question is not among them (see `identity_question`)."""
    lines = [
        f"Document: {prompt.document_name}",
        f"Printer: {prompt.printer}",
        f"Pages: {page_split(prompt)}",
        f"Copies: {prompt.copies}",
        f"Duplex: {'yes' if prompt.duplex else 'no'}",
        f"Cost: {prompt.cost}",
    ]
    return lines + [f"Note: {m}" for m in prompt.messages if not is_identity_question(m)]


def console_line(message: Message) -> str:
    if isinstance(message, PrintedNotice):
        copies = f" x {message.copies} copies" if message.copies > 1 else ""
        return (
            f'Printed "{message.document_name}" on {message.printer}: '
            f"{pages(message.sides)}{copies}, {message.cost}. Balance {message.balance}"
        )
    if isinstance(message, DeniedNotice):
        return f'Denied "{message.document_name}" on {message.printer}: {message.reason}'
    if isinstance(message, LowBalanceNotice):
        return (
            f"Low credit: your available balance is {message.available} "
            f"(below {message.threshold}). Ask for a top-up before your next job."
        )
    if isinstance(message, BalanceNotice):
        return f"Balance {message.balance} (available {message.available})"
    if isinstance(message, JobPrompt):
        ask = "Confirm" if message.kind == "confirm" else "Choose the account for"
        return f'{ask} "{message.document_name}" on {message.printer}: {message.cost}'
    if isinstance(message, PromptClosed):
        return f'"{message.document_name}" {message.outcome}: {message.reason}'
    if isinstance(message, AnswerResult):
        reason = f": {message.reason}" if message.reason else ""
        return f"Answer for job {message.job_id}: {message.outcome}{reason}"
    if isinstance(message, BroadcastNotice):
        return f"Message from {message.sender}: {message.text}"
    return f"{message.message_type}: {message.model_dump_json()}"


def json_line(message: Message) -> str:
    return json.dumps({"type": message.message_type, **json.loads(message.model_dump_json())})
