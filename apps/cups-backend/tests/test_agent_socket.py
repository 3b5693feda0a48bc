"""Who may talk to the print server's agent: only the backend's user (root, as CUPS runs a
0700 backend). An ordinary user who could reach the socket could submit, resume or
cancel other users' jobs as the print server. The agent runs for real (a process on a
real Unix socket); the other user is a real one (`nobody`). No broker is needed: what is
tested is refused, or answered, before the agent asks Platen anything."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from platen.cups_backend.agent import listening
from platen.localstack.servers import free_port

NOBODY = 65534
# The other user's client: the system's Python (the test's own lives under /root).
SYSTEM_PYTHON = "/usr/bin/python3"
CLIENT = """
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.connect(sys.argv[1])
except OSError as exc:
    print(json.dumps({"connect": type(exc).__name__}))
    raise SystemExit(0)
try:
    s.sendall(json.dumps({"op": "login", "protocol": 1, "user": "alice"}).encode() + b"\\n")
except BrokenPipeError:
    pass  # the agent may have refused and closed before the request was sent
f = s.makefile("rb")
print(json.dumps({"first": f.readline().decode(), "then": f.readline().decode()}))
"""

# Real processes on real sockets (platen.testing.tiers); as root, to be another user too.
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root, to be another user"),
]


@pytest.fixture
def open_folder() -> Iterator[Path]:
    """A folder every user may enter (as /run is), for the agent's socket folder."""
    folder = Path(tempfile.mkdtemp(prefix="platen-agent-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def start_agent(folder: Path, socket_path: Path) -> subprocess.Popen:
    config = folder / "backend.conf"
    config.write_text(
        f"[platen]\namqp_url = amqp://guest:guest@127.0.0.1:{free_port()}/\n"
        f"server_id = test\nstate_dir = {folder / 'state'}\nlogin_domains = CORP\n"
    )
    log = open(folder / "agent.log", "ab")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "platen.cups_backend.agent"],
        env={
            **os.environ,
            "PLATEN_BACKEND_CONFIG": str(config),
            "PLATEN_AGENT_SOCKET": str(socket_path),
        },
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while not socket_path.exists():
        assert proc.poll() is None, (folder / "agent.log").read_text()
        assert time.monotonic() < deadline, "the agent did not start"
        time.sleep(0.05)
    return proc


@pytest.fixture
def agent(open_folder) -> Iterator[Path]:
    """A running agent; its socket, in a folder it made for itself."""
    path = open_folder / "run" / "agent.sock"
    proc = start_agent(open_folder, path)
    yield path
    proc.terminate()
    try:
        # A loaded two-core CI once took more than 10 s (session 15): a minute before
        # the stop is called hung, with the agent's log to say where.
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
        raise AssertionError(
            "the agent did not stop on SIGTERM:\n" + (open_folder / "agent.log").read_text()
        ) from None


def as_nobody(socket_path: Path) -> dict:
    out = subprocess.run(
        [SYSTEM_PYTHON, "-c", CLIENT, str(socket_path)],
        user=NOBODY,
        group=NOBODY,
        capture_output=True,
        text=True,
        timeout=30,
        cwd="/",
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def as_root(socket_path: Path, *requests: dict) -> list[dict]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(str(socket_path))
        answers = []
        f = s.makefile("rwb")
        for request in requests:
            f.write(json.dumps(request).encode() + b"\n")
            f.flush()
            line = f.readline()
            answers.append(json.loads(line) if line else {})
        return answers


def test_the_socket_is_reachable_by_its_owner_only(agent):
    folder_mode = stat.S_IMODE(agent.parent.stat().st_mode)
    socket_mode = stat.S_IMODE(agent.stat().st_mode)
    assert (folder_mode, socket_mode) == (0o700, 0o600)
    assert as_nobody(agent) == {"connect": "PermissionError"}
    # The agent answers its own user: what is refused is the other user, not everyone.
    assert as_root(agent, {"op": "login", "protocol": 1, "user": "CORP\\Alice"}) == [
        {"login": "alice"}
    ]


def test_another_user_is_refused_even_where_the_socket_is_open_to_them(agent):
    """A folder and socket an administrator opened up by mistake: the agent checks the
    peer's credentials itself, and answers nothing but the refusal."""
    agent.parent.chmod(0o755)
    agent.chmod(0o666)
    answer = as_nobody(agent)
    assert json.loads(answer["first"]) == {"refused": "not the CUPS backend's user"}
    assert answer["then"] == ""  # and the connection is closed: no login answered
    log = [
        json.loads(line)
        for line in (agent.parent.parent / "agent.log").read_text().splitlines()
        if line.startswith("{")
    ]
    assert any(e["event"] == "agent.peer_refused" and e["peer_uid"] == NOBODY for e in log)


def test_the_agent_reads_no_document_outside_the_print_servers_state_folder(agent):
    """Even its own user cannot have it read (and send to Platen) another file."""
    fields = {"job_id": "8d3d6384-43b7-467a-8b68-92fece3b8213", "printer": "lab"}
    [answer] = as_root(
        agent, {"op": "decide", "fields": fields, "document": "/etc/shadow", "policy": {}}
    )
    assert answer == {
        "refused": "bad request: the document is not in the print server's state folder"
    }


def test_the_agent_refuses_a_backend_of_another_protocol(agent):
    [answer] = as_root(agent, {"op": "login", "protocol": 99, "user": "alice"})
    assert "refused" in answer


def test_the_agent_will_not_serve_from_a_folder_others_may_write_to(open_folder):
    shared = open_folder / "shared"
    shared.mkdir()
    shared.chmod(0o777)  # another user could put a socket of their own in its place
    config = open_folder / "backend.conf"
    config.write_text(f"[platen]\nstate_dir = {open_folder / 'state'}\n")
    out = subprocess.run(
        [sys.executable, "-m", "platen.cups_backend.agent"],
        env={
            **os.environ,
            "PLATEN_BACKEND_CONFIG": str(config),
            "PLATEN_AGENT_SOCKET": str(shared / "agent.sock"),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode != 0
    assert "may be written by others" in out.stderr
    assert not (shared / "agent.sock").exists()


FAKE_AGENT = """
import json, os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1])
os.chmod(sys.argv[1], 0o777)
s.listen()
print("listening", flush=True)
while True:
    conn, _ = s.accept()
    conn.makefile("rb").readline()
    conn.sendall(json.dumps({"state": "released"}).encode() + b"\\n")
    conn.close()
"""


def test_the_backend_does_not_take_the_word_of_an_agent_another_user_runs(open_folder, agent):
    # A socket path set by mistake into a folder users may write to, the real agent
    # stopped: whoever listens there first would "release" every job. The backend asks the
    # kernel who listens (SO_PEERCRED) and does the job itself unless it is root or its
    # own user.
    from platen.cups_backend.agent_link import AgentGone, AgentLink

    shared = open_folder / "shared"
    shared.mkdir()
    os.chown(shared, NOBODY, NOBODY)
    fake_path = shared / "agent.sock"
    fake = subprocess.Popen(
        [SYSTEM_PYTHON, "-c", FAKE_AGENT, str(fake_path)],
        user=NOBODY,
        group=NOBODY,
        stdout=subprocess.PIPE,
        text=True,
        cwd="/",
    )
    try:
        assert fake.stdout.readline().strip() == "listening"
        with pytest.raises(AgentGone, match="not run by root or this backend's user"):
            AgentLink.open(str(fake_path))
    finally:
        fake.kill()
        fake.wait(10)
    # The agent root runs is taken at its word.
    link = AgentLink.open(str(agent))
    assert link is not None
    link.close()


SILENT_LISTENER = """
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1])
os.chmod(sys.argv[1], 0o777)
s.listen()
print("listening", flush=True)
while True:
    conn, _ = s.accept()
    data, fds, _, _ = socket.recv_fds(conn, 65536, 8)
    print(f"received {len(data)} bytes and {len(fds)} descriptors", flush=True)
    conn.close()
"""


def test_the_shim_gives_nothing_to_a_listener_another_user_runs(
    open_folder, tmp_path, shim_command
):
    """Either shim (compiled or Python) hands its descriptors (the document, cupsd's
    status pipe) only to what root or its own user runs: here it gives the listener
    nothing and runs the full backend, which does not believe it either and does the job
    itself (its broker is unreachable and the printer denies then: cancelled, nothing
    printed)."""
    from platen.testing.documents import make_pdf

    shared = open_folder / "shared"
    shared.mkdir()
    os.chown(shared, NOBODY, NOBODY)
    fake_path = shared / "agent.sock"
    config = tmp_path / "backend.conf"
    config.write_text(
        f"[platen]\namqp_url = amqp://guest:guest@127.0.0.1:{free_port()}/\n"
        f"server_id = test\nstate_dir = {tmp_path / 'state'}\nagent_socket = {fake_path}\n"
        "[printer:lab]\noffline = deny\noffline_grace = 0\n"
    )
    document = tmp_path / "doc.pdf"
    document.write_bytes(make_pdf(1))
    fake = subprocess.Popen(
        [SYSTEM_PYTHON, "-c", SILENT_LISTENER, str(fake_path)],
        user=NOBODY,
        group=NOBODY,
        stdout=subprocess.PIPE,
        text=True,
        cwd="/",
    )
    try:
        assert fake.stdout.readline().strip() == "listening"
        out = subprocess.run(
            [*shim_command, "7", "alice", "t", "1", "", str(document)],
            env={
                "PATH": "/usr/bin:/bin",
                "PLATEN_BACKEND_CONFIG": str(config),
                "PRINTER": "lab",
                "DEVICE_URI": "platen:/ipp://127.0.0.1:1/ipp/print",
                "CONTENT_TYPE": "application/pdf",
                "TMPDIR": str(tmp_path),
            },
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        fake.kill()
        received = fake.communicate(timeout=10)[0]
    assert out.returncode == 5, out.stderr  # cancelled by the printer's offline policy
    assert "not using the print server's agent" in out.stderr
    assert "not run by root or this backend's user" in out.stderr
    # Two connections (the shim's, the full backend's), and not a byte or a descriptor.
    assert received.splitlines() == ["received 0 bytes and 0 descriptors"] * 2


def test_the_socket_is_in_place_only_once_it_listens(tmp_path):
    """Whoever finds the socket's file can connect: it is bound under another name and
    renamed once it listens (a file there before its `listen` refused a test's first
    connection on a loaded machine), 0600 from the start, with nothing else left."""
    path = tmp_path / "agent.sock"
    server = listening(path)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.connect(str(path))  # into the backlog: nothing has accepted it yet
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert [p.name for p in tmp_path.iterdir()] == ["agent.sock"]
    finally:
        server.close()
