"""The shim cupsd starts per job (`shim`) and the warm backend it hands the job to
(`warm`): what they agree on, as pure logic, and what the shim's start costs in imports."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from platen.cups_backend import agent_link, build_shim, config, decisions, shim, warm

SHIM = Path(shim.__file__)


# Configurations, and where in each the agent is (config.load's answer).
CONFIGS = [
    "[platen]\nagent_socket = /run/a.sock\n",
    "[platen]\r\nagent_socket = /run/a.sock\r\n",
    "[platen]\nagent_socket=/run/a.sock ; the agent\n",
    "[platen]\nAGENT_SOCKET: /run/a.sock # the agent\n",
    "[printer:x]\nagent_socket = /wrong\n[platen]\nserver_id = s\nagent_socket = /run/b\n",
    "[platen]\nagent_socket =\n",
    "[platen]\nagent_socket = /run/with;semicolon.sock\n",
    "; comment\n# another\n[platen]\nserver_id = s\n",
    "[other]\nagent_socket = /wrong\n",
    "[ platen ]\nagent_socket = /wrong\n",
]


@pytest.mark.parametrize("text", CONFIGS)
def test_the_shim_finds_the_agent_where_the_backend_would(tmp_path, monkeypatch, text):
    """The shim reads the one setting it needs without configparser: it must read it as
    the backend's own configuration does (or it would knock at another door)."""
    path = tmp_path / "backend.conf"
    path.write_text(text)
    monkeypatch.delenv("PLATEN_AGENT_SOCKET", raising=False)
    monkeypatch.setenv("PLATEN_BACKEND_CONFIG", str(path))
    environ = {b"PLATEN_BACKEND_CONFIG": str(path).encode()}
    assert shim.agent_socket(environ) == config.load().agent_socket


# What the shims run when nobody takes the job, for the test below: it says so, and ends.
FULL_BACKEND = "import sys; print('full backend', *sys.argv[1:])"


@pytest.mark.parametrize("text", CONFIGS)
def test_the_compiled_shim_finds_the_agent_where_the_backend_would(
    tmp_path, monkeypatch, compiled_shim, text
):
    """The compiled shim too (`shim.c`): it knocks where config.load says the agent is,
    and nowhere else (the places are real sockets; whichever is knocked at refuses, and a
    stand-in full backend ends the job)."""
    places = {"/run/a.sock": tmp_path / "a.sock", "/run/b": tmp_path / "b.sock"}
    for named, real in places.items():
        text = text.replace(named, str(real))
    path = tmp_path / "backend.conf"
    path.write_text(text)
    monkeypatch.delenv("PLATEN_AGENT_SOCKET", raising=False)
    monkeypatch.setenv("PLATEN_BACKEND_CONFIG", str(path))
    expected = config.load().agent_socket
    fake = tmp_path / "fake/platen/cups_backend"
    fake.mkdir(parents=True)
    (fake / "backend.py").write_text(FULL_BACKEND)
    listeners = {}
    for real in places.values():
        listeners[str(real)] = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listeners[str(real)].bind(str(real))
        listeners[str(real)].listen(1)

    def refuse(listener: socket.socket) -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(4096)
            conn.sendall(b'{"refused": "no backend ready"}\n')

    knocked = [str(real) for real in places.values() if str(real) == expected]
    threads = [threading.Thread(target=refuse, args=(listeners[p],)) for p in knocked]
    for thread in threads:
        thread.start()
    out = subprocess.run(
        [str(compiled_shim), "1", "alice", "t", "1", ""],
        env={"PLATEN_BACKEND_CONFIG": str(path), "PYTHONPATH": str(tmp_path / "fake")},
        capture_output=True,
        text=True,
        timeout=30,
    )
    for thread in threads:
        thread.join(10)
        assert not thread.is_alive()
    assert out.stdout == "full backend 1 alice t 1 \n", out.stderr
    for listener in listeners.values():
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):  # nobody else knocked
            listener.accept()
        listener.close()


def test_the_environment_names_the_agent_first(tmp_path):
    path = tmp_path / "backend.conf"
    path.write_text("[platen]\nagent_socket = /from/config\n")
    environ = {b"PLATEN_BACKEND_CONFIG": str(path).encode(), b"PLATEN_AGENT_SOCKET": b"/env"}
    assert shim.agent_socket(environ) == "/env"
    # No configuration file: the default, as config.load's.
    assert shim.agent_socket({b"PLATEN_BACKEND_CONFIG": b"/nowhere"}) == (
        config.DEFAULT_AGENT_SOCKET
    )


def test_the_compiled_shim_agrees_with_the_python_one_on_its_constants():
    source = (SHIM.parent / "shim.c").read_text()
    defined = dict(re.findall(r"^#define (\w+) (.+?)(?:\s*/\*.*)?$", source, re.MULTILINE))
    assert int(defined["PROTOCOL"]) == shim.PROTOCOL
    assert int(defined["CANCEL"]) == shim.CANCEL
    assert int(defined["MAX_LINE"]) == shim.MAX_LINE
    assert defined["DEFAULT_CONFIG"] == f'"{shim.DEFAULT_CONFIG}"'
    assert defined["DEFAULT_AGENT_SOCKET"] == f'"{shim.DEFAULT_AGENT_SOCKET}"'
    assert defined["MAX_JOB"] == "(1 << 20)" and warm.MAX_JOB == 1 << 20


def test_the_shim_and_the_backend_agree_on_their_constants():
    assert shim.PROTOCOL == agent_link.PROTOCOL
    assert shim.CANCEL == decisions.CANCEL
    assert shim.DEFAULT_CONFIG == config.DEFAULT_PATH
    assert shim.DEFAULT_AGENT_SOCKET == config.DEFAULT_AGENT_SOCKET
    assert json.loads(shim.HAND_OVER) == {"op": "hand_over", "protocol": agent_link.PROTOCOL}


def test_a_job_reaches_the_warm_backend_as_cupsd_gave_it():
    args = ["42", "CORP\\alice", "Report = draft", "1", "job-uuid=urn:uuid:1 media=A4", "/x"]
    environ = {
        b"DEVICE_URI": b"platen:/ipp://10.0.0.20/ipp/print?a=b",
        b"EMPTY": b"",
        b"LATIN1": b"caf\xe9",  # not UTF-8: passed on as bytes, unchanged
    }
    message = shim.job_message(args, environ)
    header, _, body = message.partition(b"\n")
    assert int(header) == len(body)
    assert warm.parse_job(body) == (args, environ)


@pytest.mark.parametrize(
    "body", [b"", b"x\0a", b"3\0a\0b", b"1\0a\0NOEQUALS", b"1\0a\0=value", b"-1\0a"]
)
def test_what_is_not_a_job_is_refused(body):
    with pytest.raises(warm.BadJob):
        warm.parse_job(body)


def test_the_shim_starts_with_built_in_modules_only():
    """What a job's start costs before the hand-over: Python under `-I -S` and the
    modules built into it; not even `os` or `socket` (12 ms of imports by itself)."""
    code = (
        "import sys\n"
        f"path = {str(SHIM)!r}\n"
        "exec(compile(open(path).read(), path, 'exec'), {'__name__': 'shim', '__file__': path})\n"
        "print(' '.join(sorted(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=True
    )
    imported = set(out.stdout.split())
    assert {"_socket", "_signal", "posix"} <= imported
    assert not imported & {"os", "socket", "json", "signal", "enum", "platen"}
    # What Python loads for itself under -I -S (its import system, io, the codecs), and
    # the socket module's C part: nothing else.
    own = {"__main__", "_frozen_importlib", "_frozen_importlib_external", "abc", "codecs"}
    own |= {"encodings", "io", "zipimport", "_socket"}
    others = [m for m in imported if m.split(".")[0] not in {*sys.builtin_module_names, *own}]
    assert others == []


def test_building_the_shim_says_what_is_missing(tmp_path):
    """No compiler, no folder, a path the program cannot name: a clear error, and
    nothing written where cupsd looks."""
    with pytest.raises(build_shim.BuildError, match="no C compiler"):
        build_shim.build(tmp_path / "platen", compiler="/nowhere/cc")
    with pytest.raises(build_shim.BuildError, match="no folder"):
        build_shim.build(tmp_path / "missing" / "platen")
    with pytest.raises(build_shim.BuildError, match="cannot name"):
        build_shim.build(tmp_path / "platen", python='/opt/"quoted"/python')
    assert list(tmp_path.iterdir()) == []


def test_the_built_shim_is_its_owners_alone(compiled_shim):
    """cupsd runs a 0700 backend as root, which may then read the configuration that
    holds the print server's credential."""
    assert compiled_shim.stat().st_mode & 0o777 == 0o700
