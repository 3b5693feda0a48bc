"""How each desktop message reads in a terminal. Pure functions."""

from __future__ import annotations

import json

from platen.events.base import Message
from platen.events.desktop import BalanceNotice, DeniedNotice, LowBalanceNotice, PrintedNotice


def pages(n: int) -> str:
    return f"{n} page{'s' if n != 1 else ''}"


def console_line(message: Message) -> str:
    if isinstance(message, PrintedNotice):
        copies = f" x {message.copies} copies" if message.copies > 1 else ""
        return (
            f'Printed "{message.document_name}" on {message.printer}: '
            f"{pages(message.pages)}{copies}, {message.cost}. Balance {message.balance}"
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
    return f"{message.message_type}: {message.model_dump_json()}"


def json_line(message: Message) -> str:
    return json.dumps({"type": message.message_type, **json.loads(message.model_dump_json())})
