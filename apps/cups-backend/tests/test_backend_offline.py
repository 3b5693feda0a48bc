"""The backend when Platen cannot be reached: the per-printer policy decides, and the job is
never printed free. Runs the real backend program with no broker listening."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from platen.cups_backend.config import load
from platen.localstack.servers import free_port
from platen.testing.documents import make_pdf

# The real backend program, trying the network for real (platen.testing.tiers).
pytestmark = pytest.mark.integration


def run_backend(tmp_path, policy: str, **settings) -> tuple[int, str, float]:
    dead = free_port()  # nothing listens here
    config = tmp_path / "backend.conf"
    extra = "".join(f"{k} = {v}\n" for k, v in settings.items())
    config.write_text(
        f"[platen]\namqp_url = amqp://guest:guest@127.0.0.1:{dead}/\n"
        f"server_id = test\n\n[printer:lab]\noffline = {policy}\n{extra}"
    )
    doc = tmp_path / "doc.pdf"
    doc.write_bytes(make_pdf(1))
    marker = tmp_path / "printed"
    # If the backend ever ran the "real" backend, this would create the marker file.
    env = {
        "DEVICE_URI": f"platen:/file://{marker}",
        "PRINTER": "lab",
        "PLATEN_BACKEND_CONFIG": str(config),
        "CUPS_SERVERBIN": str(tmp_path),
    }
    start = time.monotonic()
    out = subprocess.run(
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
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert not marker.exists()
    return out.returncode, out.stderr, time.monotonic() - start


def test_deny_policy_cancels_the_job_after_the_grace_period(tmp_path):
    code, err, _ = run_backend(tmp_path, "deny", offline_grace=1)
    assert code == 5  # CUPS_BACKEND_CANCEL
    # Not a timed check (the machine is noisy): a backend that held the job instead would
    # wait `offline_wait` (an hour) and outlive the run's 60 s timeout.
    assert "Platen is unreachable" in err and "cancels jobs" in err


def test_hold_policy_hands_the_job_back_to_cups_held(tmp_path):
    code, err, _ = run_backend(tmp_path, "hold", offline_wait=2)
    assert code == 3  # CUPS_BACKEND_HOLD: kept for later, not printed, not lost
    assert "the job is held for later" in err


def test_a_user_name_platen_cannot_charge_is_cancelled(tmp_path):
    config = tmp_path / "backend.conf"
    config.write_text("[platen]\namqp_url = amqp://guest:guest@127.0.0.1:1/\n")
    doc = tmp_path / "doc.pdf"
    doc.write_bytes(make_pdf(1))
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "platen.cups_backend.main",
            "7",
            "bad.user*name",
            "t",
            "1",
            "",
            str(doc),
        ],
        env={
            "DEVICE_URI": "platen:/ipp://x",
            "PRINTER": "lab",
            "PLATEN_BACKEND_CONFIG": str(config),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 5 and "cannot charge this job" in out.stderr


def test_no_arguments_lists_devices(tmp_path):
    (tmp_path / "backend").mkdir()
    fake = tmp_path / "backend" / "ipp"
    fake.write_text('#!/bin/sh\necho \'network ipp://lab.local/ipp/print "Make" "Lab"\'\n')
    fake.chmod(0o755)
    out = subprocess.run(
        [sys.executable, "-m", "platen.cups_backend.main"],
        env={"CUPS_SERVERBIN": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0
    lines = out.stdout.splitlines()
    assert lines[0].startswith('network platen "Unknown"')
    assert 'network platen:/ipp://lab.local/ipp/print "Make" "Lab"' in lines


def test_a_document_over_the_size_limit_is_cancelled_at_once_with_the_reason(tmp_path):
    """No broker listens here either: the size is checked before Platen is asked, so the
    job is refused at once with the reason, instead of looking like an outage."""
    doc = tmp_path / "doc.pdf"
    doc.write_bytes(make_pdf(3))
    size = doc.stat().st_size
    config = tmp_path / "backend.conf"
    config.write_text(
        f"[platen]\namqp_url = amqp://guest:guest@127.0.0.1:{free_port()}/\n"
        f"server_id = test\nmax_document_bytes = {size - 1}\n\n[printer:lab]\noffline = hold\n"
    )
    marker = tmp_path / "printed"
    argv = [sys.executable, "-m", "platen.cups_backend.main", "7", "alice", "t", "1", ""]
    env = {
        "DEVICE_URI": f"platen:/file://{marker}",
        "PRINTER": "lab",
        "PLATEN_BACKEND_CONFIG": str(config),
        "CUPS_SERVERBIN": str(tmp_path),
    }
    # Once as a file argument, once on stdin (as CUPS hands over a filtered document).
    # Held for an outage, it would wait an hour (`offline_wait`'s default) and not return
    # within the run's timeout; refused, it is cancelled (5), never held (3).
    for extra, stdin in (([str(doc)], None), ([], doc.read_bytes())):
        out = subprocess.run([*argv, *extra], env=env, input=stdin, capture_output=True, timeout=60)
        err = out.stderr.decode()
        assert out.returncode == 5, err  # CUPS_BACKEND_CANCEL
        reason = f"the document is too large ({size} bytes; the limit is {size - 1})"
        assert f"INFO: Platen: {reason}" in err
        assert "unreachable" not in err
        assert not marker.exists()
    # At the limit it is not refused for its size (it waits for Platen instead).
    config.write_text(
        config.read_text().replace(f"= {size - 1}", f"= {size}") + "offline_wait = 1\n"
    )
    out = subprocess.run([*argv, str(doc)], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 3 and "too large" not in out.stderr


def test_max_document_bytes_defaults_to_job_captures_limit(tmp_path):
    config = tmp_path / "backend.conf"
    config.write_text("[platen]\nserver_id = x\n")
    assert load(str(config)).max_document_bytes == 16 * 1024 * 1024
    config.write_text("[platen]\nmax_document_bytes = lots\n")
    with pytest.raises(ValueError, match="max_document_bytes must be a positive number"):
        load(str(config))


def test_a_printer_with_no_policy_holds_its_jobs_for_an_hour(tmp_path):
    config = tmp_path / "backend.conf"
    config.write_text("[platen]\nserver_id = x\n\n[printer:lab-color]\noffline = deny\n")
    policy = load(str(config)).policy("lab-mono")  # no section of its own, and no "*"
    assert (policy.offline, policy.offline_wait, policy.deadline) == ("hold", 3600.0, None)
    assert load(str(tmp_path / "missing.conf")).policy("any").offline == "hold"
