"""SIGTERM from cupsd: what it means depends on how far the backend has got with the job.

cupsd sends SIGTERM to a job's backend on `cancel` (and when it shuts down), and SIGKILL
about 30 seconds later (`JobKillDelay`). The rule: a released job is charged unless
Platen knows the printer received none of it.

- Before the printer's own backend starts (reading the document, submitting it, waiting
  for Platen's decision, or just released): the printer has none of it. `Terminated` is
  raised wherever the backend is; the caller tells Platen the job was cancelled (nothing
  is charged, the hold is released) and exits.
- Once the printer's backend runs (`printing()`): SIGTERM is only recorded and passed on
  to that backend, which stops; the job is reported as interrupted, and charged.
- While reporting: recorded, never raised, so the report is not cut short.
"""

from __future__ import annotations

import signal
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

# For type checkers only: the backend imports `subprocess` once the job is sent to the
# agent, not at its start (see backend.while_waiting).
TYPE_CHECKING = False
if TYPE_CHECKING:
    import subprocess

# cupsd's default JobKillDelay is 30 s: what is said to Platen after SIGTERM must fit in it.
AFTER_SIGTERM_SECONDS = 20.0


class Terminated(BaseException):
    """CUPS stopped the job before the printer was sent any of it.

    A BaseException, like KeyboardInterrupt: the retry loops that catch Exception while
    Platen is unreachable must not swallow it."""


class Termination:
    def __init__(self) -> None:
        self.received = False
        self.job_id: uuid.UUID | None = None  # set once the job has its Platen id
        self.inner: subprocess.Popen | None = None
        self._raise = True

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._on_sigterm)

    def _on_sigterm(self, signum, frame) -> None:
        self.received = True
        if self.inner is not None and self.inner.poll() is None:
            self.inner.send_signal(signal.SIGTERM)  # cupsd may not have told it
        if self._raise:
            self._raise = False  # one exception: the cancellation itself is not cut short
            raise Terminated

    def defer(self) -> None:
        """From here on a SIGTERM is recorded (and passed to the printer's backend), not
        raised: the job has reached the printer, or its fate is being reported."""
        self._raise = False

    @contextmanager
    def printing(self, proc: subprocess.Popen) -> Iterator[None]:
        """`proc` is the printer's backend: a SIGTERM now stops it."""
        self.inner = proc
        if self.received and proc.poll() is None:
            # SIGTERM came between `defer()` and the start of `proc`: stop it at once.
            # The printer may already have some of it, so the job is charged.
            proc.send_signal(signal.SIGTERM)
        try:
            yield
        finally:
            self.inner = None


TERMINATION = Termination()
