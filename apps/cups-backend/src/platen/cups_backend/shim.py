"""The `platen` backend as cupsd starts it: a few milliseconds of Python that hand the job
to a backend the print server's agent started ahead of it (`warm`).

cupsd starts a backend per job, so a job paid a Python start and the backend's imports
before anything else (bench/README.md, cups_latency.py). This program does no more than
connect to the agent's socket, check who listens there (SO_PEERCRED: root or this user,
as `agent_link` does), ask for a warm backend, and give it the job: the arguments, the
environment cupsd set, and its standard input, output and error (SCM_RIGHTS), so the warm
backend reads the document and writes the status lines to cupsd itself. Then it waits for
the job's exit status and exits with it. A SIGTERM from cupsd (`cancel`) is passed on as
one byte; the warm backend takes it as its own SIGTERM (`termination`), and takes this
program's end (cupsd's SIGKILL) the same way.

When there is no agent, when what listens is not trusted, when the agent refuses or has
no warm backend, the full backend (`backend`) is run in this process's place (exec),
with everything as cupsd gave it: nothing was read. When the warm backend ends without an
exit status (the agent's service stopped with it, say), the full backend is run too: it
resumes the same Platen job from the id and document the print server keeps (`job_ids`).

Run as `python -I -S <this file>` (docs/cups.md): isolated from PYTHON* variables and
site-packages, and importing only modules built into the interpreter (`posix`, `_socket`,
`_signal`), not even `os` or `socket` (which alone costs more than the rest of the start).
"""

import _signal
import _socket
import posix
import sys

# agent_link.PROTOCOL (not imported: see above; a test keeps them equal).
PROTOCOL = 1
HAND_OVER = b'{"op": "hand_over", "protocol": %d}\n' % PROTOCOL
DEFAULT_CONFIG = "/etc/platen/cups-backend.conf"  # config.DEFAULT_PATH
DEFAULT_AGENT_SOCKET = "/run/platen/print-agent/agent.sock"  # config.DEFAULT_AGENT_SOCKET
CANCEL = 5  # decisions.CANCEL
FDS = (0, 1, 2)  # the document (or nothing), stdout, stderr: the status lines for cupsd
MAX_LINE = 4096


def setting(text: str, section: str, key: str, default: str) -> str:
    """`key` of `[section]` in an INI text, as the backend's configparser reads it
    (`=` or `:`, comments whole-line or after whitespace); `default` when absent."""
    current = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line[0] == "[" and line[-1] == "]":
            current = line[1:-1]  # as configparser: `[ platen ]` is another section
            continue
        if current != section:
            continue
        cuts = [i for i in (line.find("="), line.find(":")) if i >= 0]
        if not cuts:
            continue
        name, value = line[: min(cuts)], line[min(cuts) + 1 :]
        if name.strip().lower() != key:
            continue
        for i in range(1, len(value)):
            if value[i] in ";#" and value[i - 1].isspace():
                value = value[:i]
                break
        return value.strip()
    return default


def agent_socket(environ: dict[bytes, bytes]) -> str:
    """Where the agent listens: PLATEN_AGENT_SOCKET, else the configuration's
    `agent_socket` (config.load's rule); empty for no agent."""
    if b"PLATEN_AGENT_SOCKET" in environ:
        return environ[b"PLATEN_AGENT_SOCKET"].decode(errors="surrogateescape")
    path = environ.get(b"PLATEN_BACKEND_CONFIG", DEFAULT_CONFIG.encode())
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            text = file.read()
    except OSError:
        return DEFAULT_AGENT_SOCKET
    return setting(text, "platen", "agent_socket", DEFAULT_AGENT_SOCKET)


def job_message(args: list[str], environ: dict[bytes, bytes]) -> bytes:
    """The job for the warm backend: its length, a newline, then the argument count, the
    arguments and the environment (`NAME=value`), NUL-separated (neither holds a NUL)."""
    encoding = sys.getfilesystemencoding()
    parts = [b"%d" % len(args)]
    parts += [arg.encode(encoding, "surrogateescape") for arg in args]
    parts += [name + b"=" + value for name, value in environ.items()]
    body = b"\0".join(parts)
    return b"%d\n" % len(body) + body


def trusted(sock: _socket.socket) -> bool:
    """Root or this user listens (the kernel's word): anyone else's "released" would
    print jobs free."""
    raw = sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 12)
    uid = int.from_bytes(raw[4:8], sys.byteorder, signed=True)
    return uid in (0, posix.getuid())


def full_backend(args: list[str]) -> None:
    """This process becomes the full backend, which does the job without a warm one."""
    env = dict(posix.environ)
    if b"PYTHONPATH" not in env:
        # The folder that holds `platen/cups_backend` (this file's), for `python -S`.
        here = __file__.rsplit("/", 3)[0]
        env[b"PYTHONPATH"] = here.encode(sys.getfilesystemencoding(), "surrogateescape")
    python = sys.executable
    posix.execve(python, [python, "-S", "-m", "platen.cups_backend.backend", *args], env)


class Relay:
    """The connection to the warm backend, and what cupsd's SIGTERM does meanwhile."""

    def __init__(self, sock: _socket.socket) -> None:
        self.sock = sock
        self.handed = False
        self.terminated = False
        self.buffer = b""

    def on_sigterm(self, signum: int, frame: object) -> None:
        if not self.handed:
            posix._exit(CANCEL)  # nobody has the job yet: Platen never saw it
        self.terminated = True
        try:  # noqa: SIM105 (`contextlib` is not imported here)
            self.sock.send(b"T")
        except OSError:
            pass  # gone already: it takes the end of the connection as the same

    def line(self) -> bytes:
        """The next line from the other side; b"" at its end."""
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(MAX_LINE)
            if not chunk:
                return b""
            self.buffer += chunk
            if len(self.buffer) > MAX_LINE:
                return b""
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line


def main(args: list[str]) -> None:
    if len(args) not in (5, 6):
        full_backend(args)  # listing devices, or a usage error: the full backend's
    path = agent_socket(posix.environ)
    if not path:
        full_backend(args)
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    relay = Relay(sock)
    _signal.signal(_signal.SIGTERM, relay.on_sigterm)
    try:
        sock.connect(path)
        if not trusted(sock):
            raise OSError  # the full backend says so in cupsd's log, and does the job
        sock.sendall(HAND_OVER)
        if relay.line() != b"ready":  # the agent refused, or had no warm backend
            raise OSError
        fds = b"".join(fd.to_bytes(4, sys.byteorder) for fd in FDS)
        message = job_message(args, posix.environ)
        # The descriptors travel with the first bytes; the rest follows. cupsd's SIGTERM
        # waits until `handed` says whether the warm backend has the job (its handler may
        # otherwise run between the send and the line that says so).
        _signal.pthread_sigmask(_signal.SIG_BLOCK, {_signal.SIGTERM})
        try:
            sent = sock.sendmsg([message], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, fds)])
            relay.handed = True
        finally:
            _signal.pthread_sigmask(_signal.SIG_UNBLOCK, {_signal.SIGTERM})
        sock.sendall(message[sent:])
    except OSError:
        if not relay.handed:
            sock.close()
            _signal.signal(_signal.SIGTERM, _signal.SIG_DFL)
            full_backend(args)
        # Handed, then lost: as below, when no status comes.
    try:
        status = relay.line()
    except OSError:
        status = b""
    if status.startswith(b"exit "):
        posix._exit(int(status[5:]))
    if relay.terminated:
        posix._exit(CANCEL)  # cupsd cancelled it; the warm backend reported what it could
    # The warm backend ended without a status: the full backend finishes the job,
    # resuming the same Platen job (job_ids). Said in cupsd's log: it should not happen.
    posix.write(
        2, b"WARNING: Platen: the warm backend ended without a status; running the full backend\n"
    )
    sock.close()
    _signal.signal(_signal.SIGTERM, _signal.SIG_DFL)
    full_backend(args)


if __name__ == "__main__":
    main(sys.argv[1:])
