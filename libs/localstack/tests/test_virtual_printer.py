"""The virtual printers the CUPS tests, the benchmarks and `make run` print to."""

from __future__ import annotations

import re
import subprocess
import time

import pytest

from platen.localstack.cups import PRINT_JOB, VirtualPrinter
from platen.testing.documents import make_pdf

pytestmark = pytest.mark.integration  # it starts a server (ippeveprinter)

JOB_STATE = """{
  OPERATION Get-Job-Attributes
  GROUP operation-attributes-tag
  ATTR charset attributes-charset utf-8
  ATTR naturalLanguage attributes-natural-language en
  ATTR uri printer-uri $uri
  ATTR integer job-id $job_id
  ATTR keyword requested-attributes job-state,time-at-processing,time-at-completed
  STATUS successful-ok
  DISPLAY job-state
  DISPLAY time-at-processing
  DISPLAY time-at-completed
}
"""


def test_a_job_is_done_at_once_and_only_the_document_is_kept(tmp_path):
    """ippeveprinter with no print command pretends to print every job for 5 to 15 s,
    whatever its speed: each CUPS test waited that out for every job it printed."""
    (tmp_path / "print.test").write_text(PRINT_JOB)
    (tmp_path / "state.test").write_text(JOB_STATE)
    document = tmp_path / "doc.pdf"
    document.write_bytes(make_pdf(3))
    printer = VirtualPrinter("vp", tmp_path / "vp").start()
    try:
        started = time.monotonic()
        names = ["-d", "requesting=test", "-d", "title=doc"]  # PRINT_JOB's variables
        sent = subprocess.run(
            ["ipptool", "-f", str(document), *names, printer.uri, str(tmp_path / "print.test")],
            capture_output=True,
            text=True,
            timeout=30,
        )
        job = re.search(r"^\s*(\d+)\s*$", sent.stdout, re.M)
        assert job, sent.stdout + sent.stderr
        state = []
        # A deadline for a loaded machine only: what is asserted is the printer's own
        # account of the job (its processing and completion times, in seconds).
        while time.monotonic() - started < 60:
            table = subprocess.run(
                ["ipptool", "-d", f"job_id={job[1]}", printer.uri, str(tmp_path / "state.test")],
                capture_output=True,
                text=True,
                timeout=30,
            ).stdout
            state = table.split()[-3:]
            if state[:1] == ["completed"]:
                break
            time.sleep(0.1)
        assert state[:1] == ["completed"], table
        processing, completed = int(state[1]), int(state[2])
        # The pretence takes 5 s at the least; doing nothing takes well under 2.
        assert completed - processing < 2, f"printed from {processing} s to {completed} s"
        [received] = printer.received()
        assert received.read_bytes() == document.read_bytes()
    finally:
        printer.stop()
