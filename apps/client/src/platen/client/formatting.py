"""How each desktop message reads in a terminal, and as a JSON line. Pure functions."""

from __future__ import annotations

import json

from platen.client.contract import (
    AnswerResult,
    BalanceNotice,
    BroadcastNotice,
    DeniedNotice,
    JobPrompt,
    LowBalanceNotice,
    PrintedNotice,
    PromptClosed,
)
from platen.client.i18n import _
from platen.client.wire import Message, to_json
from platen.events.identity_question import is_identity_question, parse_identity_question


def pages(n: int) -> str:
    return (_("{n} page") if n == 1 else _("{n} pages")).format(n=n)


def page_split(prompt: JobPrompt) -> str:
    """'3 pages (1 colour, 2 grayscale)' — the breakdown only when there is colour."""
    if prompt.color_sides:
        split = _("{colour} colour, {grayscale} grayscale").format(
            colour=prompt.color_sides, grayscale=prompt.grayscale_sides
        )
        return f"{pages(prompt.sides)} ({split})"
    return f"{pages(prompt.sides)} ({_('grayscale')})"


def identity_question(prompt: JobPrompt) -> str | None:
    """ "Did you print 'x' from HOST at 14:02?" when nothing proved the job is the user's:
    shown above everything else, since answering "print" makes them pay for it. The server
    writes it in English (`IDENTITY_QUESTION`); it is said again in the user's language."""
    first = prompt.messages[0] if prompt.messages else ""
    if not is_identity_question(first):
        return None
    parts = parse_identity_question(first)
    if parts is None:
        return first
    return _("Did you print '{document}' from {host} at {time}?").format(**parts)


def prompt_facts(prompt: JobPrompt) -> list[tuple[str, str, str]]:
    """(key, label, value) of each fact about the job, the labels in the user's language."""
    return [
        ("document", _("Document"), prompt.document_name),
        ("printer", _("Printer"), prompt.printer),
        ("pages", _("Pages"), page_split(prompt)),
        ("copies", _("Copies"), str(prompt.copies)),
        ("duplex", _("Duplex"), _("yes") if prompt.duplex else _("no")),
        ("cost", _("Cost"), str(prompt.cost)),
    ]


def prompt_lines(prompt: JobPrompt) -> list[str]:
    """What a prompt says, one fact per line (the console's); the identity question is
    not among them (see `identity_question`)."""
    lines = [f"{label}: {value}" for _key, label, value in prompt_facts(prompt)]
    notes = [m for m in prompt.messages if not is_identity_question(m)]
    return lines + [_("Note: {text}").format(text=m) for m in notes]


def console_line(message: Message) -> str:
    if isinstance(message, PrintedNotice):
        copies = (
            " " + _("x {copies} copies").format(copies=message.copies) if message.copies > 1 else ""
        )
        return _(
            'Printed "{document}" on {printer}: {pages}{copies}, {cost}. Balance {balance}'
        ).format(
            document=message.document_name,
            printer=message.printer,
            pages=pages(message.sides),
            copies=copies,
            cost=message.cost,
            balance=message.balance,
        )
    if isinstance(message, (DeniedNotice, LowBalanceNotice)) and message.text:
        # The site's own wording (`platenctl notice template`), as its administrator wrote it.
        return message.text
    if isinstance(message, DeniedNotice):
        return _('Denied "{document}" on {printer}: {reason}').format(
            document=message.document_name, printer=message.printer, reason=message.reason
        )
    if isinstance(message, LowBalanceNotice):
        return _(
            "Low credit: your available balance is {available} (below {threshold}). "
            "Ask for a top-up before your next job."
        ).format(available=message.available, threshold=message.threshold)
    if isinstance(message, BalanceNotice):
        return _("Balance {balance} (available {available})").format(
            balance=message.balance, available=message.available
        )
    if isinstance(message, JobPrompt):
        ask = (
            _('Confirm "{document}" on {printer}: {cost}')
            if message.kind == "confirm"
            else _('Choose the account for "{document}" on {printer}: {cost}')
        )
        return ask.format(
            document=message.document_name, printer=message.printer, cost=message.cost
        )
    if isinstance(message, PromptClosed):
        return f'"{message.document_name}" {message.outcome}: {message.reason}'
    if isinstance(message, AnswerResult):
        reason = f": {message.reason}" if message.reason else ""
        return f"Answer for job {message.job_id}: {message.outcome}{reason}"
    if isinstance(message, BroadcastNotice):
        return _("Message from {sender}: {text}").format(sender=message.sender, text=message.text)
    return f"{message.message_type}: {to_json(message).decode()}"


def json_line(message: Message) -> str:
    return json.dumps({"type": message.message_type, **json.loads(to_json(message))})
