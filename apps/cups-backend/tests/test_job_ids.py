"""The backend's job ids: random, kept per CUPS job until CUPS is done with it."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from platen.cups_backend import job_ids
from platen.cups_backend.job_ids import JobIds, cups_job_key
from platen.cups_backend.main import NOT_FINAL

OPTIONS = (
    "finishings=3 number-up=1 job-uuid=urn:uuid:c1d40341-6017-34fb-4e33-d41a7babdb57 "
    "job-originating-host-name=localhost time-at-creation=1796103854 "
    "time-at-processing=1796103854"
)


@pytest.fixture(autouse=True)
def no_claims_left():
    yield
    job_ids._claimed.clear()


def test_the_same_cups_job_keeps_its_id_and_the_id_is_random(tmp_path):
    store = JobIds(tmp_path / "state")
    key = cups_job_key("lab-color", "7", OPTIONS)
    first = store.job_id(key)
    assert store.job_id(key) == first  # CUPS runs the backend again: the same Platen job
    # Processing again changes time-at-processing, not the job.
    again = OPTIONS.replace("time-at-processing=1796103854", "time-at-processing=1796109999")
    assert store.job_id(cups_job_key("lab-color", "7", again)) == first
    assert first.version == 4
    assert JobIds(tmp_path / "elsewhere").job_id(key) != first  # another print server


def test_a_renumbered_cups_job_gets_a_new_id(tmp_path):
    """CUPS's job history cleared: job 7 again, but another job (another uuid and time)."""
    store = JobIds(tmp_path / "state")
    old = store.job_id(cups_job_key("lab-color", "7", OPTIONS))
    renumbered = OPTIONS.replace("c1d40341", "99999999").replace(
        "time-at-creation=1796103854", "time-at-creation=1796200000"
    )
    assert store.job_id(cups_job_key("lab-color", "7", renumbered)) != old
    assert store.job_id(cups_job_key("lab-mono", "7", OPTIONS)) != old  # another queue


def test_the_state_is_private_to_the_print_server(tmp_path):
    folder = tmp_path / "state"
    store = JobIds(folder)
    store.job_id(cups_job_key("lab-color", "1", OPTIONS))
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    [entry] = list(folder.iterdir())
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600
    # The file is named by a digest: it tells nothing of the job to whoever sees the name.
    assert "lab-color" not in entry.name


def test_the_id_is_forgotten_once_cups_is_done_with_the_job(tmp_path):
    state = str(tmp_path / "state")
    for code in sorted(NOT_FINAL):  # CUPS runs the job again: keep the id
        job_id = job_ids.claim(state, "lab-color", "3", OPTIONS)
        assert job_ids.settle(code, NOT_FINAL) == code
        assert job_ids.claim(state, "lab-color", "3", OPTIONS) == job_id
    for code in (0, 1, 5):  # printed, failed, cancelled: a later job 3 is another job
        job_id = job_ids.claim(state, "lab-color", "3", OPTIONS)
        assert job_ids.settle(code, NOT_FINAL) == code
        assert list((tmp_path / "state").iterdir()) == []
        job_ids._claimed.clear()
        assert job_ids.claim(state, "lab-color", "3", OPTIONS) != job_id
        job_ids.settle(0, NOT_FINAL)
        job_ids._claimed.clear()


def test_old_entries_and_torn_writes_are_pruned(tmp_path):
    store = JobIds(tmp_path / "state")
    kept = store.job_id(cups_job_key("lab-color", "1", OPTIONS))
    stale = store.job_id(cups_job_key("lab-color", "2", OPTIONS))
    torn = tmp_path / "state" / ".abc.123.tmp"
    torn.write_text("half")
    old = time.time() - job_ids.MAX_AGE - 60
    os.utime(tmp_path / "state" / cups_job_key("lab-color", "2", OPTIONS), (old, old))
    os.utime(torn, (old, old))
    assert store.prune() == 2
    assert store.job_id(cups_job_key("lab-color", "1", OPTIONS)) == kept
    assert store.job_id(cups_job_key("lab-color", "2", OPTIONS)) != stale


def test_a_backend_killed_after_making_the_id_resumes_with_it(tmp_path):
    """SIGKILL between making the id and submitting: the next run submits the same id, so
    a job that did reach job-capture is never captured twice."""
    state = tmp_path / "state"
    script = (
        "import os, signal\n"
        "from platen.cups_backend import job_ids\n"
        f"print(job_ids.claim({str(state)!r}, 'lab-color', '9', {OPTIONS!r}), flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode == -signal.SIGKILL
    made = uuid.UUID(out.stdout.strip())
    assert job_ids.claim(str(state), "lab-color", "9", OPTIONS) == made


def test_without_a_usable_state_folder_the_backend_prints_nothing(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(SystemExit) as exit_:
        job_ids.claim(str(blocker / "state"), "lab-color", "1", OPTIONS)
    assert exit_.value.code == 1
    assert "cannot keep job ids" in capsys.readouterr().err


def test_every_run_of_a_cups_job_prints_the_document_its_first_run_prepared(tmp_path):
    store = JobIds(tmp_path / "state")
    key = cups_job_key("lab-color", "7", OPTIONS)
    first, second = tmp_path / "first", tmp_path / "second"
    first.write_bytes(b"%PDF- what the first run prepared and Platen analysed")
    second.write_bytes(b"%PDF- what a second run of the same program drew")
    kept = Path(store.document(key, first))  # a str: no `pathlib` on a job's start
    assert kept.read_bytes() == first.read_bytes()
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert Path(store.document(key, second)).read_bytes() == first.read_bytes()
    # Another CUPS job keeps its own.
    other = cups_job_key("lab-color", "8", OPTIONS)
    assert Path(store.document(other, second)).read_bytes() == second.read_bytes()
    store.forget(key)
    assert sorted(p.name for p in store.folder.iterdir()) == [f"{other}.document"]


def test_a_document_the_disk_cuts_short_is_never_kept(tmp_path):
    """A full disk or a file-size limit cuts a write short by the count it returns, not
    an error: the kept copy would be what every run of the job submits and prints. Run
    under a file-size limit (RLIMIT_FSIZE) below the document's size: a clear error, and
    nothing kept, not even the temporary file."""
    state = tmp_path / "state"
    prepared = tmp_path / "prepared"
    prepared.write_bytes(b"%PDF-" + os.urandom(200_000))
    script = (
        "import resource, signal\n"
        "from platen.cups_backend import job_ids\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))\n"
        f"job_ids.claim({str(state)!r}, 'lab-color', '11', {OPTIONS!r})\n"
        f"print(job_ids.kept_document({str(prepared)!r}))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "cannot keep the job's document" in out.stderr
    key = cups_job_key("lab-color", "11", OPTIONS)
    assert sorted(p.name for p in state.iterdir()) == [key]  # its id only


def test_a_claim_says_whether_the_id_is_new(tmp_path):
    """A new id: Platen cannot know the job, and the backend submits it without asking
    first (`main.capture_and_wait`); an id an earlier run kept: it asks first."""
    state = str(tmp_path / "state")
    job_ids.claim(state, "lab-color", "7", OPTIONS)
    assert job_ids.claimed_new()
    job_ids.claim(state, "lab-color", "7", OPTIONS)  # CUPS runs the backend again
    assert not job_ids.claimed_new()
