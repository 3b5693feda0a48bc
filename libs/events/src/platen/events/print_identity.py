"""Identity at print: how job-capture decides whose a job from a CUPS queue is.

Each queue (printer) has an identity mode, owned by job-capture:

- `authenticated`: cupsd makes the submitter sign in (Basic over TLS against the print
  server's accounts, or Kerberos); the user CUPS names is the one who signed in.
- `desktop`: the named user must be present at the job's host: their own signed-in
  desktop connected to the broker from that host, and no other user's. Otherwise the
  user's desktop is asked whether they printed it.
- `trusted`: the name CUPS gives is taken as it is. Only ever set explicitly.

A queue never set is `desktop`: a new queue is never `trusted`.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from platen.events.base import Command, PrinterName, Query, Reply
from platen.events.registry import register

IdentityMode = Literal["authenticated", "desktop", "trusted"]
DEFAULT_MODE: IdentityMode = "desktop"

# What job-capture found out about who sent a job (carried by `job.captured`):
# authenticated: CUPS authenticated the user on an `authenticated` queue;
# present: the user's own desktop, and no other user's, is connected from the job's host;
# unverified: nothing proves it; the user is asked before the job prints;
# trusted: a `trusted` queue, the name taken as given;
# api: submitted through the admin's command interface, vouched for by the admin.
JobIdentity = Literal["authenticated", "present", "unverified", "trusted", "api"]

# The identity question lives in `identity_question` (no pydantic: the desktop reads it).
from platen.events.identity_question import (  # noqa: E402, F401
    IDENTITY_QUESTION,
    is_identity_question,
    parse_identity_question,
)


@register
class SetPrinterIdentity(Command):
    """Command to job-capture (`capture.printer.identity.set`, admin only): how jobs on
    this queue prove whose they are."""

    message_type: ClassVar[str] = "capture.printer.identity.set"
    printer: PrinterName
    mode: IdentityMode


@register
class GetPrinterIdentity(Query):
    """Query to job-capture (`capture.printer.identity.get`)."""

    message_type: ClassVar[str] = "capture.printer.identity.get"
    printer: PrinterName


@register
class PrinterIdentity(Reply):
    """A queue's identity mode; `explicit` is false for a queue never set (the default)."""

    message_type: ClassVar[str] = "capture.printer.identity.reply"
    printer: PrinterName
    mode: IdentityMode
    explicit: bool


@register
class ListPrinterIdentities(Query):
    """Query to job-capture (`capture.printer.identity.list`): every queue set explicitly."""

    message_type: ClassVar[str] = "capture.printer.identity.list"
    mode: IdentityMode | None = None


@register
class PrinterIdentities(Reply):
    message_type: ClassVar[str] = "capture.printer.identity.list.reply"
    printers: list[PrinterIdentity] = Field(default_factory=list)
