"""Servers that die with the program that started them, however it ends.

A test worker killed by a timeout or a crash runs no teardown, and the servers it started
(RabbitMQ, PostgreSQL, cupsd, virtual printers, the print agent: each in a session of its
own, so that a Ctrl-C meant for the tests does not reach them) went on running, orphaned,
with their ports and folders (session 13 found a whole cluster left).

`start()` gives this process a watcher: a small process holding the read end of a pipe
whose write end only this process has (the descriptor is not inherited). `watch(pid)`
tells the watcher each server as it is started. When the pipe closes, which the kernel
does when this process ends, however it ends, the watcher kills every server it was told
of that is still running, with its process group, and then deletes the folders it was
told of (`remove_after`: the servers' data, some 40 MB a worker, which a killed worker's
teardown never removed). After an orderly end the servers are stopped and their folders
removed already, and nothing is left to do.

Not PR_SET_PDEATHSIG: the kernel sends that signal when the *thread* that started the
child ends, and servers are started from short-lived pool threads (the broker and the
database at once). Without `start()` (`make run`), `watch` does nothing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

_watcher: subprocess.Popen | None = None
# The process that started the watcher: a process forked from it has no working lifeline
# (the pipe stays open while its parent lives), and watches nothing.
_owner: int | None = None
_lock = threading.Lock()


def start() -> None:
    """Start this process's watcher (once: a later call does nothing)."""
    global _watcher, _owner
    with _lock:
        if _watcher is not None and _owner == os.getpid():
            return
        _watcher = subprocess.Popen(
            [sys.executable, "-m", "platen.localstack.lifeline"],
            stdin=subprocess.PIPE,
            # Its own session: a signal to this process's group (Ctrl-C) leaves it
            # waiting for the pipe, while this process tears its servers down itself.
            start_new_session=True,
        )
        _owner = os.getpid()


def watch(pid: int) -> None:
    """Have the watcher kill process `pid` (a child of this process), and its process
    group if it leads one, should this process end first. Nothing without a watcher."""
    with _lock:
        if _watcher is None or _owner != os.getpid():
            return
        started = start_time(pid)
        if started is None:
            return  # already gone
        try:
            leader = os.getpgid(pid) == pid
        except ProcessLookupError:
            return
        with contextlib.suppress(BrokenPipeError):
            _watcher.stdin.write(f"{pid} {started} {int(leader)}\n".encode())
            _watcher.stdin.flush()


def remove_after(folder: Path) -> None:
    """Have the watcher delete `folder` (made by this process for its servers' data) once
    it has killed the servers, should this process end first. Nothing without a watcher."""
    with _lock:
        if _watcher is None or _owner != os.getpid():
            return
        with contextlib.suppress(BrokenPipeError):
            _watcher.stdin.write(b"rm " + os.fsencode(folder) + b"\n")
            _watcher.stdin.flush()


def start_time(pid: int) -> str | None:
    """When process `pid` started (clock ticks since boot), None if there is none: a pid
    the kernel gives again to a new process has another start time."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return stat.rpartition(")")[2].split()[19]


def still_ours(recorded: str, now: str | None, leader: bool) -> bool:
    """Whether to kill what was recorded: the same process (same start time); or, for a
    group whose leader has ended, the group (no new process gets a pid that a living
    group still uses as its id, so the id cannot name anyone else's group)."""
    if now is not None:
        return now == recorded
    return leader


def _kill(pid: int, started: str, leader: bool) -> None:
    if not still_ours(started, start_time(pid), leader):
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if leader:
            os.killpg(pid, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)


def _any_alive(watched: list[tuple[int, str, bool]]) -> bool:
    """Whether anything that was killed still runs: a process (the same start time), or
    for a group's leader any process of its group (the broker's Erlang VM under its
    start script). One pass over /proc for all of them; a zombie has ended."""
    running: set[tuple[int, str]] = set()
    groups: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if fields[0] != "Z":
            running.add((int(entry.name), fields[19]))
            groups.add(int(fields[2]))
    return any(
        (pid, started) in running or (leader and pid in groups) for pid, started, leader in watched
    )


def main() -> None:
    """The watcher: read what to kill and remove until the pipe closes, then do it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    watched: list[tuple[int, str, bool]] = []
    folders: list[Path] = []
    for line in sys.stdin.buffer:
        if line.startswith(b"rm "):
            folders.append(Path(os.fsdecode(line[3:].rstrip(b"\n"))))
            continue
        pid, started, leader = line.split()
        watched.append((int(pid), started.decode(), leader == b"1"))
    for pid, started, leader in watched:
        _kill(pid, started, leader)
    if not folders:
        return
    # A server killed may still be writing into its folder for a moment: its files are
    # removed once it has ended (a few seconds at most after SIGKILL).
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _any_alive(watched):
        time.sleep(0.1)
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
