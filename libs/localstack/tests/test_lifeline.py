"""Servers die with the process that started them, even one killed outright."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from platen.localstack.lifeline import start_time, still_ours

# A test worker, as far as its servers can tell: a watcher started, a server started
# from a pool thread (as the broker and the database are) in a session of its own with a
# program of its own, and a plain child; it says their pids and waits to be killed.
WORKER = textwrap.dedent(
    """
    import json, subprocess, time
    from concurrent.futures import ThreadPoolExecutor
    from platen.localstack import lifeline

    lifeline.start()

    def server():
        proc = subprocess.Popen(["sh", "-c", "sleep 300 & echo $!; wait"],
                                stdout=subprocess.PIPE, text=True, start_new_session=True)
        lifeline.watch(proc.pid)
        return proc.pid, int(proc.stdout.readline())

    with ThreadPoolExecutor(1) as pool:  # the thread ends before the worker does
        leader, its_child = pool.submit(server).result()
    plain = subprocess.Popen(["sleep", "301"])
    lifeline.watch(plain.pid)
    print(json.dumps([leader, its_child, plain.pid]), flush=True)
    time.sleep(300)
    """
)


def _running(pid: int) -> bool:
    """Whether `pid` has not ended (a zombie has: only init reaps a killed worker's
    orphans, in its own time)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _left(pids: list[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while (left := [p for p in pids if _running(p)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


@pytest.mark.integration  # it starts processes, and waits for them
def test_a_killed_worker_takes_its_servers_and_their_programs_with_it():
    worker = subprocess.Popen([sys.executable, "-c", WORKER], stdout=subprocess.PIPE, text=True)
    pids: list[int] = []
    try:
        pids = json.loads(worker.stdout.readline())
        assert _left(pids, timeout=0) == pids  # all running while the worker lives
        worker.kill()  # as a timeout or a crash would: no teardown at all
        worker.wait(10)
        assert _left(pids, timeout=30) == []
    finally:
        worker.kill()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_only_what_was_recorded_is_killed():
    me = start_time(os.getpid())
    assert me is not None
    assert still_ours(me, me, leader=False)
    # The pid was given to another process since: not ours, leader or not.
    assert not still_ours(me, str(int(me) + 1), leader=True)
    assert not still_ours(me, str(int(me) + 1), leader=False)
    # Ended: its group may live on (a leader's), a plain process's pid means nothing now.
    assert still_ours(me, None, leader=True)
    assert not still_ours(me, None, leader=False)
