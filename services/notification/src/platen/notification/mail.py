"""Email notices: the site's mail settings, the SMTP client, and the sender that drains
the table `mail_outbox`.

The handlers only queue mail (`notices.tell`), in their transaction. `MailSender` claims
due rows (`Store.claim_mail`: FOR UPDATE SKIP LOCKED, then a lease, so several replicas
share the work and never send one row at once), sends each outside any transaction, and
records what the server said: taken (sent), refused for good (5xx: recorded with the
reply, never tried again) or not now (4xx, no connection: tried again after a growing
delay). A replica that dies between sending and recording leaves the row to be sent again
when its lease ends: a mail may then arrive twice, never not at all.

Settings (environment of the notification service):
- PLATEN_EMAIL_NOTICES=on: the site's switch (off by default); each user also opts in.
- PLATEN_SMTP_HOST, PLATEN_SMTP_PORT (default 587 with starttls, 465 with tls, else 25),
  PLATEN_SMTP_SECURITY=starttls|tls|none (default starttls), PLATEN_SMTP_FROM,
  PLATEN_SMTP_USERNAME and PLATEN_SMTP_PASSWORD_FILE (read at each connection, never
  logged), PLATEN_SMTP_CA_FILE (a private CA to verify the server with).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any, Literal, Protocol

import structlog

from platen.notification.domain import MailOutcome, QueuedMail, retry_delay, smtp_outcome
from platen.notification.store import Store

log = structlog.get_logger("notification.mail")

Security = Literal["starttls", "tls", "none"]
DEFAULT_PORTS: dict[str, int] = {"starttls": 587, "tls": 465, "none": 25}
ON = ("on", "1", "true", "yes")


def enabled(env: Mapping[str, str] = os.environ) -> bool:
    """The site's switch: are low-balance and denial notices also sent by email?"""
    return env.get("PLATEN_EMAIL_NOTICES", "off").strip().lower() in ON


class MailSettingsError(Exception):
    """The mail settings are incomplete or wrong; the message says which."""


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    security: Security
    sender: str
    username: str | None = None
    password_file: Path | None = field(default=None)
    ca_file: str | None = None
    timeout: float = 30.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> SmtpSettings:
        host = env.get("PLATEN_SMTP_HOST", "").strip()
        sender = env.get("PLATEN_SMTP_FROM", "").strip()
        if not host or not sender:
            raise MailSettingsError("email notices need PLATEN_SMTP_HOST and PLATEN_SMTP_FROM")
        security = env.get("PLATEN_SMTP_SECURITY", "starttls").strip().lower()
        if security not in DEFAULT_PORTS:
            raise MailSettingsError(f"PLATEN_SMTP_SECURITY={security!r}: use starttls, tls or none")
        port = env.get("PLATEN_SMTP_PORT", "").strip()
        password_file = env.get("PLATEN_SMTP_PASSWORD_FILE", "").strip()
        return cls(
            host=host,
            port=int(port) if port else DEFAULT_PORTS[security],
            security=security,  # type: ignore[arg-type]
            sender=sender,
            username=env.get("PLATEN_SMTP_USERNAME", "").strip() or None,
            password_file=Path(password_file) if password_file else None,
            ca_file=env.get("PLATEN_SMTP_CA_FILE", "").strip() or None,
        )

    def password(self) -> str | None:
        """Read from its file at each connection, so a changed password needs no restart.
        Kept in no attribute and never logged."""
        if self.password_file is None:
            return None
        return self.password_file.read_text().rstrip("\r\n")


def build_message(sender: str, mail: QueuedMail) -> EmailMessage:
    """The mail as sent. The subject and body came from a checked template with
    one-line values; the email package refuses any header value holding a line break, so
    nothing can add a header whatever reached the table."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = mail.recipient
    msg["Subject"] = mail.subject
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    msg.set_content(mail.body)
    return msg


class Transport(Protocol):
    async def send(self, mail: QueuedMail) -> tuple[MailOutcome, str | None]: ...


class SmtpTransport:
    """One SMTP connection per mail (notices are few): the standard library's client, in
    a thread so the service's event loop never waits on the mail server."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings

    async def send(self, mail: QueuedMail) -> tuple[MailOutcome, str | None]:
        return await asyncio.to_thread(self._send, mail)

    def _send(self, mail: QueuedMail) -> tuple[MailOutcome, str | None]:
        try:
            msg = build_message(self.settings.sender, mail)
        except (ValueError, TypeError) as exc:
            return MailOutcome.REFUSED, f"not a valid mail: {exc}"
        try:
            with self._connect() as smtp:
                refused = smtp.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()))
            return smtp_outcome(code), _said(code, text)
        except (smtplib.SMTPAuthenticationError, smtplib.SMTPNotSupportedError) as exc:
            # The site's settings are wrong, not this mail: keep it until they are right.
            return MailOutcome.RETRY, f"mail server refused the sign-in or TLS: {exc}"
        except smtplib.SMTPResponseException as exc:
            return smtp_outcome(exc.smtp_code), _said(exc.smtp_code, exc.smtp_error)
        except (OSError, smtplib.SMTPException) as exc:
            return MailOutcome.RETRY, f"could not reach the mail server: {exc!r}"
        if refused:  # only one recipient: refused means the exception above
            return MailOutcome.RETRY, f"recipient not taken: {refused}"
        return MailOutcome.SENT, None

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        context = ssl.create_default_context(cafile=s.ca_file)
        smtp: smtplib.SMTP
        if s.security == "tls":
            smtp = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=context)
        else:
            smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
        try:
            if s.security == "starttls":
                smtp.starttls(context=context)
            password = s.password()
            if s.username and password is not None:
                smtp.login(s.username, password)
        except BaseException:
            smtp.close()
            raise
        return smtp


def _said(code: int, text: bytes | str) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return f"{code} {text}".strip()


class MailSender:
    """Drains `mail_outbox`. Created unconfigured (the handlers wake it after a commit)
    and configured by `start` (the service's on_ready hook), or by `configure` in a test."""

    def __init__(
        self, *, batch: int = 10, poll_seconds: float = 5.0, retry_delays: Any = retry_delay
    ) -> None:
        self.batch = batch
        self.poll_seconds = poll_seconds
        self.retry_delays = retry_delays
        self.pool: Any = None
        self.transport: Transport | None = None
        self._wakeup = asyncio.Event()

    def configure(self, pool: Any, transport: Transport, lease_seconds: float) -> None:
        self.pool, self.transport, self.lease_seconds = pool, transport, lease_seconds

    async def start(self, rt) -> None:
        """on_ready hook: with the site's switch on, send what is due now and from then on."""
        if not enabled():
            log.info("email notices are off (PLATEN_EMAIL_NOTICES)")
            return
        settings = SmtpSettings.from_env()  # raises: a switched-on site must be set up
        # A claim outlives every attempt of its batch, so no other replica takes a row
        # that is still being sent.
        self.configure(rt.pool, SmtpTransport(settings), self.batch * settings.timeout + 60)
        log.info(
            "email notices on",
            host=settings.host,
            port=settings.port,
            security=settings.security,
            sender=settings.sender,
            signs_in=settings.username is not None,
        )
        rt.tasks.append(asyncio.create_task(self.run(), name="mail-sender"))

    async def wake(self) -> None:
        """A mail was queued: send it now rather than at the next poll."""
        self._wakeup.set()

    async def run(self) -> None:
        while True:
            # Cleared before the claim: a mail queued while a batch is sent wakes the next.
            self._wakeup.clear()
            try:
                claimed = await self.send_due()
            except Exception:  # the database away: the rows wait, nothing is lost
                log.exception("mail sender could not reach the database; trying again")
                claimed = 0
            if claimed >= self.batch:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self.poll_seconds)

    async def send_due(self) -> int:
        """Send the mails due now (one batch); how many were claimed."""
        assert self.pool is not None and self.transport is not None
        async with self.pool.acquire() as conn:
            claimed = await Store(conn).claim_mail(self.batch, self.lease_seconds)
        for mail in claimed:
            outcome, error = await self.transport.send(mail)
            about = {"job_id": str(mail.job_id)} if mail.job_id else {}
            async with self.pool.acquire() as conn:
                store = Store(conn)
                if outcome is MailOutcome.SENT:
                    await store.mail_sent(mail.id)
                    log.info("mail sent", user=mail.login, mail_id=mail.id, **about)
                elif outcome is MailOutcome.REFUSED:
                    await store.mail_refused(mail.id, error or "refused")
                    log.warning(
                        "mail refused", user=mail.login, mail_id=mail.id, error=error, **about
                    )
                else:
                    delay = self.retry_delays(mail.attempts + 1)
                    await store.mail_retry(mail.id, error or "not sent", delay)
                    log.warning(
                        "mail not sent; will retry",
                        user=mail.login,
                        mail_id=mail.id,
                        error=error,
                        retry_in=delay,
                        **about,
                    )
        return len(claimed)


# The service's one sender: the handlers wake it, main.py starts it.
SENDER = MailSender()
