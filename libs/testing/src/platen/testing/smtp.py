"""A real SMTP server for tests (aiosmtpd, on a free loopback port): what it was given,
and a reply with which it refuses recipients when a test wants it to."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage

from aiosmtpd.controller import Controller

from platen.localstack.servers import free_port


class MailInbox:
    """The aiosmtpd handler: keeps each envelope; `refuse` answers RCPT with that reply
    (e.g. "451 ..." for not now, "550 ..." for never) instead of taking the recipient.
    `port`: where `smtp_server` listens for it (a free one, chosen now, so a test can name
    it to the sender before the server runs)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.envelopes: list = []
        self.refuse: str | None = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refuse:
            return self.refuse
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 Message accepted"

    def messages(self) -> list[EmailMessage]:
        return [
            email.message_from_bytes(e.original_content, policy=email.policy.default)  # type: ignore[misc]
            for e in self.envelopes
        ]


@contextmanager
def smtp_server(inbox: MailInbox) -> Iterator[Controller]:
    """An SMTP server on 127.0.0.1:`inbox.port` while the block runs (ready when it
    starts)."""
    controller = Controller(inbox, hostname="127.0.0.1", port=inbox.port)
    controller.start()
    try:
        yield controller
    finally:
        controller.stop()
