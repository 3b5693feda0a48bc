"""The fork server behaves as `subprocess` does for what the tests ask of it."""

from __future__ import annotations

import os
import signal
import subprocess
import textwrap
from pathlib import Path

import pytest

from platen.testing.forkserver import ForkServer

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
    elif what == "sleep":
        print("started", flush=True)
        time.sleep(60)
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
