"""A backend started ahead of its job: the print server's agent keeps a few waiting, with
Python started and the backend's modules imported, and gives each the connection of one
`shim` (the program cupsd starts per job), which hands it the job.

The job then runs exactly as in a backend cupsd started itself (`backend.run`): the
arguments and environment are cupsd's, standard input, output and error are the shim's
own descriptors (cupsd's pipes: the document in, the status lines out), and the printer's
backend, when the job is released, is this process's child with those descriptors. What
differs is the process: the agent's user (root, as cupsd runs a 0700 backend), its
limits and its service's sandbox, not cupsd's.

cupsd's job control reaches it through the shim: a SIGTERM there arrives here as one byte
and is raised here as SIGTERM (`termination`: cancelled at Platen before printing,
charged as interrupted once printing); the shim's end without a status (cupsd's SIGKILL
after its JobKillDelay) is taken the same way, so a job is never left waiting at the
agent for a backend that is gone. The exit status goes back to the shim as a line.

A warm backend serves one job and exits. Run by the agent only (`agent.WarmBackends`):
`python -m platen.cups_backend.warm FD`, FD its end of a private socket pair.
"""

from __future__ import annotations

import os
import signal
import socket
import struct
import sys
import threading
import traceback

# What the job needs (`backend`, `printing`) is imported in `run`, at the lowest CPU
# priority, before the job comes: the reason this process exists.

# What the shim sends, at most: its arguments and cupsd's environment.
MAX_JOB = 1 << 20
FDS = 3  # the shim's standard input, output and error


class BadJob(Exception):
    """What came from the shim is not a job (it ended half way, or sent nonsense)."""


def parse_job(body: bytes) -> tuple[list[str], dict[bytes, bytes]]:
    """The shim's arguments and environment (`shim.job_message`, without its length)."""
    parts = body.split(b"\0")
    try:
        count = int(parts[0])
    except ValueError:
        raise BadJob("no argument count") from None
    if not 0 <= count <= len(parts) - 1:
        raise BadJob("fewer arguments than counted")
    args = [os.fsdecode(arg) for arg in parts[1 : 1 + count]]
    environ = {}
    for item in parts[1 + count :]:
        name, sep, value = item.partition(b"=")
        if not sep or not name:
            raise BadJob(f"not an environment entry: {item[:40]!r}")
        environ[name] = value
    return args, environ


def receive_job(conn: socket.socket) -> tuple[list[str], dict[bytes, bytes], list[int]]:
    """Read the shim's job: its arguments, environment and descriptors."""
    data, ancillary, _, _ = conn.recvmsg(65536, socket.CMSG_SPACE(FDS * 4))
    fds: list[int] = []
    for level, kind, raw in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds += struct.unpack(f"{len(raw) // 4}i", raw[: len(raw) - len(raw) % 4])
    try:
        if len(fds) != FDS:
            raise BadJob(f"{len(fds)} descriptors, not {FDS}")
        header, newline, body = data.partition(b"\n")
        if not newline or not header.isdigit() or int(header) > MAX_JOB:
            raise BadJob("no length")
        length = int(header)
        while len(body) < length:
            chunk = conn.recv(length - len(body))
            if not chunk:
                raise BadJob("the shim ended before its job did")
            body += chunk
        args, environ = parse_job(body)
    except BadJob:
        for fd in fds:
            os.close(fd)
        raise
    return args, environ, fds


def adopt(args: list[str], environ: dict[bytes, bytes], fds: list[int]) -> None:
    """Become the job's backend: cupsd's environment, the shim's descriptors."""
    sys.stdout.flush()
    sys.stderr.flush()
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    os.environ.clear()
    for name, value in environ.items():
        os.environb[name] = value
    sys.argv = [sys.argv[0], *args]


class Watch:
    """The shim's side while the job runs: a byte means cupsd's SIGTERM, the end of the
    connection the shim's end (cupsd's SIGKILL); both become this process's SIGTERM."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self.done = False

    def start(self) -> None:
        threading.Thread(target=self._run, name="shim-watch", daemon=True).start()

    def _run(self) -> None:
        while not self.done:
            try:
                data = self.conn.recv(64)
            except OSError:
                data = b""
            if self.done:
                return
            os.kill(os.getpid(), signal.SIGTERM)
            if not data:
                return  # the shim is gone: one SIGTERM, as cupsd's


def idle_priority(idle: bool) -> None:
    """Start up only on CPU time nobody else wants (SCHED_IDLE): a warm backend is started
    as another takes a job, and must not slow that job down (on two cores its imports
    would take one for a tenth of a second). Back to the ordinary policy for its own job.
    As root only: an ordinary user may not always leave SCHED_IDLE again."""
    if os.geteuid() != 0:
        return
    policy = os.SCHED_IDLE if idle else os.SCHED_OTHER
    os.sched_setscheduler(0, policy, os.sched_param(0))


def serve(conn: socket.socket) -> int:
    """Take the shim's job, run it, and send the shim its exit status."""
    from platen.cups_backend import backend, timings
    from platen.cups_backend.termination import TERMINATION

    raw = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    shim_pid, uid, _ = struct.unpack("3i", raw)
    if uid not in (0, os.geteuid()):
        return 1  # the agent checked it too: never anyone else's job
    conn.sendall(b"ready\n")
    args, environ, fds = receive_job(conn)
    idle_priority(False)
    timings.counted_from(shim_pid)
    timings.mark("started")
    adopt(args, environ, fds)
    TERMINATION.install()  # before the watch can raise a SIGTERM
    watch = Watch(conn)
    watch.start()
    timings.mark("imported")
    try:
        backend.run(args)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        traceback.print_exc()
        code = 1
    watch.done = True
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the job is over: nothing to stop
    sys.stdout.flush()
    sys.stderr.flush()
    conn.sendall(b"exit %d\n" % code)
    return 0


def run() -> None:
    control = socket.socket(fileno=int(sys.argv[1]))
    idle_priority(True)
    import platen.cups_backend.printing  # noqa: F401
    from platen.cups_backend import backend  # noqa: F401

    control.sendall(b"ready\n")  # to the agent: imported, waiting
    # The agent sends one descriptor: a shim's connection. Its end (the agent stopped)
    # ends this process, which had no job.
    _, fds, _, _ = socket.recv_fds(control, 16, 1)
    control.close()
    if not fds:
        os._exit(0)
    conn = socket.socket(fileno=fds[0])
    conn.setblocking(True)
    try:
        status = serve(conn)
    except (OSError, BadJob) as exc:
        print(f"platen warm backend: no job from the shim ({exc})", file=sys.stderr)
        status = 1
    os._exit(status)


if __name__ == "__main__":
    run()
