"""Run the printer's own backend on a released job, keeping the job alive at Platen.

While the printer's backend runs, a heartbeat goes to job-capture every few seconds, so
that a long print (a slow printer, a big job) is not taken for a lost one when it passes
job-capture's release timeout. A heartbeat that gets no answer is not retried: the next
one follows, and a job that Platen stops hearing about is charged anyway (unconfirmed).
Standard library only: the backend imports it on every job (the heartbeat itself goes
through the agent, or `main.heartbeat`).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

from platen.cups_backend.devices import backend_dir
from platen.cups_backend.termination import Termination

FAILED = 1


def run_with_heartbeat(
    inner_uri: str,
    args: list[str],
    document: Path,
    *,
    termination: Termination,
    heartbeat: Callable[[], None],
    interval: float,
    say: Callable[[str, str], None],
) -> int:
    """The printer's backend's exit status, after running it to its end."""
    scheme = inner_uri.split(":", 1)[0]
    backend = backend_dir() / scheme
    if not backend.exists():
        say("ERROR", f"Platen: no CUPS backend for {scheme!r}")
        return FAILED
    env = {**os.environ, "DEVICE_URI": inner_uri}
    # stdout and stderr pass through: cupsd reads the real backend's messages as ours.
    proc = subprocess.Popen([inner_uri, *args[:5], str(document)], executable=str(backend), env=env)
    with termination.printing(proc):
        while True:
            try:
                return proc.wait(timeout=interval)
            except subprocess.TimeoutExpired:
                heartbeat()
