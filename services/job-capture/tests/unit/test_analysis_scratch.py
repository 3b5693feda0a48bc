"""Where analyses keep a document while it is analysed (`isolation.scratch_folder`): one
folder per process, and the folders of processes that ended without removing theirs (a
job-capture killed mid-analysis: a user's document would stay on the disk) removed by the
next process that analyses on the host."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

from platen.job_capture import isolation


def a_dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_the_folders_of_ended_processes_are_removed_and_no_other(tmp_path):
    dead = tmp_path / f"platen-analyses-{a_dead_pid()}-x1"
    (dead / "platen-analysis-y").mkdir(parents=True)
    (dead / "platen-analysis-y" / "document").write_bytes(b"%PDF-1.7 someone's thesis")
    alive = tmp_path / f"platen-analyses-{os.getpid()}-x2"
    alive.mkdir()
    odd = tmp_path / "platen-analyses-notapid-x3"
    odd.mkdir()
    other = tmp_path / "somebody-elses"
    other.mkdir()
    assert isolation.sweep_scratch(str(tmp_path)) == [dead.name]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([alive.name, odd.name, other.name])


def test_a_process_makes_its_folder_once_sweeping_first(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(isolation, "_scratch", None)
    dead = tmp_path / f"platen-analyses-{a_dead_pid()}-x1"
    dead.mkdir()
    folder = isolation.scratch_folder()
    assert os.path.basename(folder).startswith(f"platen-analyses-{os.getpid()}-")
    assert not dead.exists()
    assert isolation.scratch_folder() == folder
    assert oct(os.stat(folder).st_mode & 0o777) == "0o700"


def test_a_process_that_ends_normally_removes_its_folder(tmp_path):
    code = (
        "import tempfile, sys; tempfile.tempdir = sys.argv[1]\n"
        "from platen.job_capture import isolation\n"
        "print(isolation.scratch_folder())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip().startswith(str(tmp_path / "platen-analyses-"))
    assert list(tmp_path.iterdir()) == []
