"""The fork server behaves as `subprocess` does for what the tests ask of it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from platen.localstack.servers import free_port
from platen.testing.forkserver import PRELOAD, ForkServer

# It starts processes (a server, then children): not the unit tier's milliseconds.
pytestmark = pytest.mark.integration

PROGRAM = textwrap.dedent(
    """
    import os, sys, time
    what = sys.argv[1]
    if what == "echo":
        print("args", sys.argv[2:], "cwd", os.getcwd(), "env", os.environ.get("FS_TEST"))
        print("in", sys.stdin.read(), file=sys.stderr)
    elif what == "exit":
        sys.exit(int(sys.argv[2]))
    elif what == "raise":
        raise ValueError("boom")
    elif what == "session":
        print(os.getsid(0) == os.getpid())
    elif what == "name":
        print(open("/proc/self/comm").read().strip())
    elif what == "sleep":
        print("started", flush=True)
        time.sleep(60)
    elif what == "family":  # a service with a program of its own running (Ghostscript)
        import subprocess
        child = subprocess.Popen(["sleep", "120"])
        print(os.getpid(), child.pid, flush=True)
        time.sleep(120)
    """
)

# A test worker, as far as its fork server can tell: it starts one, has it run a program
# in a session of its own (a service) and one without (a `platenctl` call), says their
# pids, and waits to be killed.
WORKER = textwrap.dedent(
    """
    import json, os, sys, time
    from pathlib import Path
    from platen.testing.forkserver import ForkServer

    folder = Path(sys.argv[1])
    server = ForkServer(folder, preload=("json",))
    pids = {"server": server.pid}
    for name, new_session in (("service", True), ("ctl", False)):
        out = open(folder / name, "wb")
        proc = server.popen("fsprog", ["family"], env={}, cwd=folder, stdout=out.fileno(),
                            new_session=new_session)
        pids[name] = proc.pid
    print(json.dumps(pids), flush=True)
    time.sleep(300)
    """
)


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> ForkServer:
    folder = tmp_path_factory.mktemp("fs")
    fs = ForkServer(folder, preload=("json",))
    yield fs
    fs.close()


@pytest.fixture
def program(tmp_path: Path) -> Path:
    (tmp_path / "fsprog.py").write_text(PROGRAM)
    return tmp_path


def test_arguments_environment_folder_and_streams_are_the_childs_own(server, program):
    out = server.run("fsprog", ["echo", "a b"], env={"FS_TEST": "yes"}, cwd=program, input="hello")
    assert out.returncode == 0
    assert out.stdout.strip() == f"args ['a b'] cwd {program} env yes"
    assert out.stderr.strip() == "in hello"
    assert "FS_TEST" not in os.environ  # nothing leaked back into the caller


@pytest.mark.parametrize(("argv", "code"), [(["exit", "3"], 3), (["exit", "0"], 0)])
def test_the_exit_code_is_the_programs(server, program, argv, code):
    assert server.run("fsprog", argv, env={}, cwd=program).returncode == code


def test_an_exception_exits_1_with_its_traceback(server, program):
    out = server.run("fsprog", ["raise"], env={}, cwd=program)
    assert out.returncode == 1
    assert "ValueError: boom" in out.stderr


def test_a_child_is_named_for_its_program_not_the_server(server, program):
    """So that `ps` and process accounting tell a run's services apart."""
    assert server.run("fsprog", ["name"], env={}, cwd=program).stdout.strip() == "fsprog"


def test_a_new_session_when_asked(server, program, tmp_path):
    log = tmp_path / "log"
    with open(log, "wb") as f:
        proc = server.popen(
            "fsprog", ["session"], env={}, cwd=program, stdout=f.fileno(), new_session=True
        )
    assert proc.wait(30) == 0
    assert log.read_text().strip() == "True"


def test_signals_reach_the_child_and_its_end_is_reported(server, program, tmp_path):
    log = tmp_path / "log"
    with open(log, "wb") as f:
        proc = server.popen(
            "fsprog", ["sleep"], env={"PYTHONUNBUFFERED": "1"}, cwd=program,
            stdout=f.fileno(), stderr=subprocess.STDOUT,
        )  # fmt: skip
    assert proc.poll() is None
    with pytest.raises(subprocess.TimeoutExpired):
        proc.wait(0.2)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(30) == -signal.SIGKILL
    assert proc.poll() == -signal.SIGKILL
    assert log.read_text() == "started\n"  # written before the kill, not lost in a buffer


def test_a_run_past_its_timeout_is_killed(server, program):
    with pytest.raises(subprocess.TimeoutExpired):
        server.run("fsprog", ["sleep"], env={}, cwd=program, timeout=1)


def test_an_unknown_module_fails_like_python_m(server, program):
    out = server.run("no_such_module_here", [], env={}, cwd=program)
    assert out.returncode == 1
    assert "No module named no_such_module_here" in out.stderr


def _running(pid: int) -> bool:
    """Whether `pid` is a process that has not ended (a zombie has: nothing reaps the
    orphans of a killed test worker here but init, in its own time)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _gone(pids, timeout: float = 30) -> list[int]:
    """The pids still running after `timeout` seconds (none, when all have ended)."""
    deadline = time.monotonic() + timeout
    while (left := [p for p in pids if _running(p)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def _family(folder: Path, name: str) -> list[int]:
    """The pids a `family` program wrote: its own and its child's."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = (folder / name).read_text() if (folder / name).exists() else ""
        if line.endswith("\n"):
            return [int(pid) for pid in line.split()]
        time.sleep(0.05)
    raise AssertionError(f"{name} never started")


def test_a_killed_worker_takes_the_servers_children_and_their_programs_with_it(tmp_path):
    (tmp_path / "fsprog.py").write_text(PROGRAM)
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    everyone: list[int] = []
    try:
        pids = json.loads(worker.stdout.readline())
        service, ctl = _family(tmp_path, "service"), _family(tmp_path, "ctl")
        everyone = [pids["server"], *service, *ctl]
        assert service[0] == pids["service"] and ctl[0] == pids["ctl"]
        assert _gone(everyone, timeout=0) == everyone  # all running while the worker lives
        worker.kill()  # as a timeout or a crash would: no teardown at all
        worker.wait(10)
        # The service's own program is in its process group, and goes with it; the
        # program a `platenctl` call started (the server's group) is not this test's
        # to follow, and is killed here only so that it does not outlive the test.
        assert _gone([pids["server"], *service, ctl[0]]) == []
    finally:
        worker.kill()
        for pid in everyone:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_a_server_killed_outright_takes_its_children_with_it(tmp_path, program):
    server = ForkServer(tmp_path, preload=("json",))
    child = None
    try:
        with open(tmp_path / "out", "wb") as out:
            child = server.popen(
                "fsprog", ["sleep"], env={}, cwd=program, stdout=out.fileno(), new_session=True
            )
        assert _gone([child.pid], timeout=0) == [child.pid]
        os.kill(server.pid, signal.SIGKILL)
        assert _gone([child.pid]) == []
    finally:
        if child is not None:
            child.kill()
        server.close()


# Preloads the modules named on its command line as the fork server does, and says which
# environment variables they read and how many threads are running afterwards.
IMPORT_PROBE = textwrap.dedent(
    """
    import importlib, json, os, sys, threading
    read = []
    environ = type(os.environ)
    get, contains = environ.__getitem__, environ.__contains__
    environ.__getitem__ = lambda self, key: (read.append(key), get(self, key))[1]
    environ.__contains__ = lambda self, key: (read.append(key), contains(self, key))[1]
    from platen.testing.forkserver import warm
    warm(sys.argv[1:])
    loaded = sorted(name for name in sys.modules if name.startswith("platen."))
    print(json.dumps({"read": read, "threads": threading.active_count(), "loaded": loaded}))
    """
)


def imported(*modules: str, path: Path | None = None) -> dict:
    # Without the caller's own Platen settings (`PLATEN_TEST_WORKERS=4 make test`): an
    # import that walks the whole environment (wsgiref's, under the metrics server) would
    # count as reading them. A setting read by name is recorded whether it is set or not.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLATEN_")}
    if path is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(path), env.get("PYTHONPATH", "")])
    out = subprocess.run(
        [sys.executable, "-c", IMPORT_PROBE, *modules],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    return json.loads(out.stdout)


def test_what_the_server_preloads_reads_no_setting_and_starts_no_thread(tmp_path):
    # A child would keep a setting read in the server (the worker's environment, not the
    # one the test gave the child) and lose the server's threads.
    found = imported(*PRELOAD)
    assert [key for key in found["read"] if key.startswith("PLATEN_")] == []
    assert found["threads"] == 1
    # The services' programs are left for the child to run; what they import is loaded.
    assert "platen.job_capture.main" not in found["loaded"]
    assert "platen.job_capture.handlers" in found["loaded"]
    # The probe sees a setting read at import, as a module that read one would.
    (tmp_path / "reads_at_import.py").write_text(
        'import os\nLIMIT = os.environ.get("PLATEN_SOME_LIMIT", "1")\n'
    )
    assert "PLATEN_SOME_LIMIT" in imported("reads_at_import", path=tmp_path)["read"]


# What a service or a platenctl call does at start that makes a library import more: an
# anyio task group on asyncio (FastStream's app), an httpx client (the management API's),
# a platenctl command run to its end (here: no broker to reach).
LAZY = textwrap.dedent(
    """
    import asyncio, json, os, sys
    before = set(sys.modules)

    async def start():
        import anyio
        async with anyio.create_task_group():
            pass
        import httpx
        async with httpx.AsyncClient(base_url="https://localhost:1"):
            pass

    asyncio.run(start())
    from platen.ctl.main import main
    sys.argv = ["platenctl", "user", "show", "nobody"]
    try:
        main()
    except SystemExit:
        pass
    print(json.dumps(sorted(set(sys.modules) - before)), file=sys.stderr)
    """
)


def test_a_child_imports_nothing_the_libraries_load_late(tmp_path):
    # Each module a child imports is imported again in every service and platenctl call
    # of a run (thousands): what the libraries load on first use is preloaded too.
    (tmp_path / "lazy.py").write_text(LAZY)
    fs = ForkServer(tmp_path, preload=PRELOAD)
    try:
        env = {**os.environ, "PLATEN_AMQP_URL": f"amqp://127.0.0.1:{free_port()}/"}
        out = fs.run("lazy", [], env=env, cwd=tmp_path, timeout=120)
    finally:
        fs.close()
    assert "cannot reach the broker" in out.stderr  # the command did run
    assert json.loads(out.stderr.strip().splitlines()[-1]) == []
