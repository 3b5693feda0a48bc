"""What the backend makes of Platen's answers, whoever asked (the backend itself or the
print server's agent). Standard library only: the backend imports it on every job.

Exit codes are CUPS's (cups/backend.h).
"""

from __future__ import annotations

import sys
from collections import namedtuple

OK, FAILED, HOLD, CANCEL = 0, 1, 3, 5


def say(kind: str, text: str) -> None:
    """A line for cupsd: INFO sets the job's state message, ERROR goes to its log too."""
    print(f"{kind}: {text}", file=sys.stderr, flush=True)


# What the real backend's exit status says about the job: printed, failed for good, or
# not yet decided (the printer is busy or stopped; CUPS will run the job again, and the
# job stays released so that the next run prints it).
NOT_FINAL = {2, 3, 4, 6, 7}
FINAL = {"released", "printed", "denied", "cancelled", "failed", "unconfirmed"}
# Released to the printer: "unconfirmed" is a released job charged already because its
# outcome never came (say CUPS ran it again much later); it prints, and is charged once.
PRINTABLE = {"released", "unconfirmed"}


# Named tuples, not dataclasses, in the modules the backend imports on every job:
# `dataclasses` brings `inspect` (and `ast`, `dis`, `tokenize`), a fifth of what the
# backend's start used to import (bench/README.md, cups_latency.py).
class Decision(namedtuple("Decision", "state reason", defaults=(None,))):
    """The job's state once Platen has decided (or knows nothing of it), and why
    (`state`: str, `reason`: str or None)."""

    __slots__ = ()


class Offline(Exception):
    """Platen could not be reached for longer than the printer's policy allows; its one
    argument is the policy (hold or deny)."""


class Refused(Exception):
    """Platen answered with an error (the job is not taken)."""


class Invalid(Exception):
    """The job's attributes are not ones Platen can charge (say, a document name it
    refuses); the argument says which."""
