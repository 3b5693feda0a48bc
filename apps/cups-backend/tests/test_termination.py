"""SIGTERM (CUPS `cancel`) at each point of the backend's work, with real signals and real
processes: before printing it cancels, while printing it stops the printer's backend."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from platen.cups_backend.termination import Terminated, Termination
from platen.localstack.servers import free_port
from platen.testing.documents import make_pdf


@pytest.fixture
def termination():
    previous = signal.getsignal(signal.SIGTERM)
    t = Termination()
    t.install()
    yield t
    signal.signal(signal.SIGTERM, previous)


def test_before_printing_a_sigterm_interrupts_whatever_the_backend_does(termination):
    with pytest.raises(Terminated):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # waiting for Platen: cut short
    assert termination.received
    # Only once: the cancellation it leads to is not itself interrupted.
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(0.05)


def test_once_deferred_a_sigterm_is_recorded_and_stops_the_printers_backend(termination):
    termination.defer()
    printer = subprocess.Popen(["sleep", "30"])
    with termination.printing(printer):
        os.kill(os.getpid(), signal.SIGTERM)  # no exception here
        assert printer.wait(timeout=5) == -signal.SIGTERM
    assert termination.received


def test_a_sigterm_just_before_the_printers_backend_starts_stops_it_at_once(termination):
    termination.defer()
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(0.05)
    printer = subprocess.Popen(["sleep", "30"])
    with termination.printing(printer):
        assert printer.wait(timeout=5) == -signal.SIGTERM


@pytest.mark.integration  # the real backend program, trying the network for real
def test_the_backend_cancelled_while_platen_is_unreachable_never_prints(tmp_path):
    """SIGTERM while the backend waits for an unreachable Platen: it stops waiting, tries
    to report the cancellation (until cupsd would SIGKILL it) and exits as cancelled."""
    config = tmp_path / "backend.conf"
    config.write_text(
        f"[platen]\namqp_url = amqp://guest:guest@127.0.0.1:{free_port()}/\n"
        "server_id = test\n\n[printer:lab]\noffline = hold\n"
    )
    doc = tmp_path / "doc.pdf"
    doc.write_bytes(make_pdf(1))
    marker = tmp_path / "printed"
    env = {
        **os.environ,
        "DEVICE_URI": f"platen:/file://{marker}",
        "PRINTER": "lab",
        "PLATEN_BACKEND_CONFIG": str(config),
        "CUPS_SERVERBIN": str(tmp_path),
    }
    backend = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "platen.cups_backend.main",
            "7",
            "alice",
            "doc.pdf",
            "1",
            "",
            str(doc),
        ],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    line = ""
    while "unreachable" not in line and time.monotonic() < deadline:
        line = backend.stderr.readline()
    assert "unreachable" in line  # it is waiting for Platen
    backend.send_signal(signal.SIGTERM)
    start = time.monotonic()
    code = backend.wait(timeout=40)
    took = time.monotonic() - start
    rest = backend.stderr.read()
    assert code == 5  # CUPS_BACKEND_CANCEL
    assert "the cancellation could not be reported" in rest
    assert took < 28  # within cupsd's 30 s before SIGKILL
    assert not marker.exists()
