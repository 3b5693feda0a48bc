"""Each shim cupsd may start per job, the compiled one (`shim.c`) and the Python one
(`shim.py`), run as a real process against a stand-in agent on a real Unix socket, which
reads the job as a warm backend does (`warm.receive_job`). No broker: what is tested is the
hand-over, cupsd's job control through it, and the full backend taking over when nobody
takes the job (it then finds no broker, and the printer's offline policy cancels it)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
from pathlib import Path

import pytest

from platen.cups_backend import shim, warm
from platen.localstack.servers import free_port
from platen.testing.documents import make_pdf

# A process tree on a Unix socket, but the full backend dials a broker's (closed) port.
pytestmark = pytest.mark.integration

ARGS = ["42", "CORP\\alice", "Report = draft", "1", "job-uuid=urn:uuid:1 media=A4"]
CANCEL = 5


class StandInAgent:
    """Listens where the shim looks for the agent; `then` is what it does with the one
    connection it takes (its own thread). It takes no other: the full backend, when it
    runs, finds nobody."""

    def __init__(self, path: Path, then) -> None:
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(path))
        self.listener.listen(1)
        self.then = then
        self.greeting = b""
        self.job: tuple[list[str], dict[bytes, bytes], list[int]] | None = None
        self.after: bytes = b""
        self.handed = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        conn, _ = self.listener.accept()
        self.listener.close()  # nobody else
        with conn:
            self.greeting = conn.makefile("rb").readline()
            self.then(self, conn)

    def take_job(self, conn: socket.socket, keep_fds: bool = False) -> None:
        conn.sendall(b"ready\n")
        self.job = warm.receive_job(conn)
        if not keep_fds:  # the shim's output ends when nobody else holds it
            for fd in self.job[2]:
                os.close(fd)
        self.handed.set()


def run_shim(shim_command, tmp_path: Path, agent_path: Path, **kwargs) -> subprocess.Popen:
    """The shim as cupsd starts it, on a job whose printer cancels it when Platen is
    unreachable (what the full backend finds here)."""
    config = tmp_path / "backend.conf"
    config.write_text(
        f"[platen]\namqp_url = amqp://guest:guest@127.0.0.1:{free_port()}/\n"
        f"server_id = test\nstate_dir = {tmp_path / 'state'}\nagent_socket = {agent_path}\n"
        "login_domains = CORP\n"
        "[printer:lab]\noffline = deny\noffline_grace = 0\n"
    )
    document = tmp_path / "doc.pdf"
    document.write_bytes(make_pdf(1))
    with open(document, "rb") as stdin:
        return subprocess.Popen(
            [*shim_command, *ARGS],
            env={
                b"PATH": b"/usr/bin:/bin",
                b"PLATEN_BACKEND_CONFIG": os.fsencode(config),
                b"PRINTER": b"lab",
                b"DEVICE_URI": b"platen:/ipp://127.0.0.1:1/ipp/print",
                b"CONTENT_TYPE": b"application/pdf",
                b"TMPDIR": os.fsencode(tmp_path),
                b"LATIN1": b"caf\xe9",  # not UTF-8: passed on as bytes, unchanged
            },
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            **kwargs,
        )


def test_the_job_and_its_descriptors_reach_the_warm_backend_and_its_status_comes_back(
    shim_command, tmp_path
):
    def job_then_status(agent: StandInAgent, conn: socket.socket) -> None:
        agent.take_job(conn, keep_fds=True)
        _, _, fds = agent.job
        agent.document = os.read(fds[0], 1 << 16)
        os.write(fds[1], b"written to cupsd's stdout\n")
        os.write(fds[2], b"STATUS: to cupsd's stderr\n")
        for fd in fds:
            os.close(fd)
        conn.sendall(b"exit 3\n")

    agent = StandInAgent(tmp_path / "agent.sock", job_then_status)
    proc = run_shim(shim_command, tmp_path, tmp_path / "agent.sock")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, err
    assert agent.greeting == shim.HAND_OVER
    args, environ, _ = agent.job
    assert args == ARGS
    assert environ[b"LATIN1"] == b"caf\xe9"
    assert environ[b"DEVICE_URI"] == b"platen:/ipp://127.0.0.1:1/ipp/print"
    assert agent.document == (tmp_path / "doc.pdf").read_bytes()
    assert out == b"written to cupsd's stdout\n"
    assert err == b"STATUS: to cupsd's stderr\n"


def test_cupsd_cancelling_before_anyone_has_the_job_ends_the_shim_at_once(shim_command, tmp_path):
    greeted = threading.Event()

    def say_nothing(agent: StandInAgent, conn: socket.socket) -> None:
        greeted.set()
        conn.recv(1)  # until the shim is gone

    StandInAgent(tmp_path / "agent.sock", say_nothing)
    proc = run_shim(shim_command, tmp_path, tmp_path / "agent.sock")
    assert greeted.wait(30)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == CANCEL, err
    assert out == b""


@pytest.mark.parametrize("then", [b"exit 0\n", b""], ids=["status", "no status"])
def test_cupsd_cancelling_a_handed_job_reaches_the_warm_backend_as_one_byte(
    shim_command, tmp_path, then
):
    """The warm backend takes the byte as cupsd's SIGTERM and reports its exit status
    (the shim exits with it), or ends without one (the shim exits as cancelled; it does
    not run the full backend for a job cupsd cancelled)."""

    def job_then_cancel(agent: StandInAgent, conn: socket.socket) -> None:
        agent.take_job(conn)
        agent.after = conn.recv(16)
        conn.sendall(then)

    agent = StandInAgent(tmp_path / "agent.sock", job_then_cancel)
    proc = run_shim(shim_command, tmp_path, tmp_path / "agent.sock")
    assert agent.handed.wait(30)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert agent.after == b"T"
    assert proc.returncode == (0 if then else CANCEL), err
    assert b"full backend" not in err


def test_a_warm_backend_ending_without_a_status_leaves_the_job_to_the_full_backend(
    shim_command, tmp_path
):
    agent = StandInAgent(tmp_path / "agent.sock", StandInAgent.take_job)
    proc = run_shim(shim_command, tmp_path, tmp_path / "agent.sock")
    _, err = proc.communicate(timeout=120)
    assert agent.handed.is_set()
    assert b"the warm backend ended without a status; running the full backend" in err
    # The full backend did the job: it found no broker, and the printer denies then.
    assert b"Platen is unreachable" in err
    assert proc.returncode == CANCEL


@pytest.mark.parametrize(
    "answer", [b'{"refused": "no backend ready"}\n', b""], ids=["refused", "closed"]
)
def test_an_agent_that_does_not_take_the_job_leaves_it_to_the_full_backend(
    shim_command, tmp_path, answer
):
    def refuse(agent: StandInAgent, conn: socket.socket) -> None:
        conn.sendall(answer)

    agent = StandInAgent(tmp_path / "agent.sock", refuse)
    proc = run_shim(shim_command, tmp_path, tmp_path / "agent.sock")
    _, err = proc.communicate(timeout=120)
    assert agent.greeting == shim.HAND_OVER
    assert not agent.handed.is_set()
    assert b"warm backend ended" not in err
    assert b"Platen is unreachable" in err
    assert proc.returncode == CANCEL


def test_without_an_agent_the_full_backend_does_the_job(shim_command, tmp_path):
    proc = run_shim(shim_command, tmp_path, tmp_path / "nobody-here.sock")
    _, err = proc.communicate(timeout=120)
    assert b"Platen is unreachable" in err
    assert proc.returncode == CANCEL


def test_an_exit_status_that_is_not_a_number_is_no_success(shim_command, tmp_path):
    def nonsense(agent: StandInAgent, conn: socket.socket) -> None:
        agent.take_job(conn)
        conn.sendall(b"exit zero\n")

    StandInAgent(tmp_path / "agent.sock", nonsense)
    proc = run_shim(shim_command, tmp_path, tmp_path / "agent.sock")
    proc.communicate(timeout=60)
    assert proc.returncode == 1
