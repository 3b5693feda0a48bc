"""A test worker killed outright (a timeout, a crash: no teardown) leaves nothing running:
its broker, its database and everything they started go with it, and then their data
folder (platen.localstack.lifeline). So does a benchmark that starts its servers with
`provide` and is killed."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

# It starts a test process that starts the real servers.
pytestmark = pytest.mark.integration

INNER = textwrap.dedent(
    """
    import time
    from pathlib import Path

    def test_holds_the_servers(infra):
        Path("ready").write_text(infra.amqp_url)
        time.sleep(300)
    """
)


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        parent = int(stat.rpartition(")")[2].split()[1])
        tree.setdefault(parent, []).append(int(entry.name))
    return tree


def _descendants(pid: int) -> list[int]:
    tree, found, todo = _children(), [], [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"  # a zombie has ended


def _command(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:120]
    return "?"


# A benchmark, as far as its servers can tell: a program that is no test and starts no
# watcher itself, only the servers (`provide`), and is killed before its teardown.
PROGRAM = textwrap.dedent(
    """
    import time
    from pathlib import Path
    from platen.testing.infra import provide

    with provide(durable=True) as infra:
        Path("ready").write_text(infra.amqp_url)
        time.sleep(300)
    """
)


@pytest.mark.parametrize("kind", ["test worker", "benchmark"])
def test_a_worker_killed_outright_leaves_no_server_running(tmp_path, kind):
    (tmp_path / "test_inner.py").write_text(INNER)
    (tmp_path / "program.py").write_text(PROGRAM)
    # The worker's temporary folder, where its servers' data goes: one of this test's own
    # (and one the database's user can reach, which pytest's is not).
    servers_tmp = Path(tempfile.mkdtemp(prefix="platen-killed-"))
    servers_tmp.chmod(0o755)
    command = {
        "test worker": ["-m", "pytest", "-q", "-p", "no:cacheprovider",
                        "-p", "platen.testing.fixtures", "test_inner.py"],
        "benchmark": ["program.py"],
    }[kind]  # fmt: skip
    # The local binaries' tier whatever this run's is: what the watcher kills (servers
    # named by the environment are not the worker's; containers are testcontainers').
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLATEN_TEST_")}
    env.update(TMPDIR=str(servers_tmp), DOCKER_HOST="unix:///nonexistent/docker.sock")
    worker = subprocess.Popen(
        [sys.executable, *command],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    started: list[int] = []
    try:
        deadline = time.monotonic() + 240
        while not (tmp_path / "ready").exists():
            assert worker.poll() is None and time.monotonic() < deadline, "no servers came up"
            time.sleep(0.2)
        started = _descendants(worker.pid)
        commands = " ".join(_command(p) for p in started)
        assert "beam.smp" in commands and "postgres" in commands  # the servers are there
        made = list(servers_tmp.glob("platen-test-*"))
        assert len(made) == 1 and (made[0] / "postgres").is_dir(), made  # and their data
        worker.kill()
        worker.wait(10)
        deadline = time.monotonic() + 60
        while (left := [p for p in started if _running(p)]) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert left == [], [_command(p) for p in left]
        started = []  # all ended: their pids may be another's by the time `finally` runs
        # Then the servers' data: the folder the worker made for them (about 40 MB, one
        # a run was left behind by this very test before).
        assert _removed(servers_tmp), list(servers_tmp.rglob("*"))[:20]
    finally:
        worker.kill()
        for pid in started:  # nothing of this test's left behind, even when it fails
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(servers_tmp, ignore_errors=True)


def _removed(folder: Path, timeout: float = 60) -> bool:
    """Whether the servers' data folders under `folder` are gone within `timeout` (the
    watcher removes them once the servers it killed have ended)."""
    deadline = time.monotonic() + timeout
    while list(folder.glob("platen-test-*")):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True
