"""Start Python programs for tests without paying for a fresh interpreter each time.

A whole-system test starts four services and calls `platenctl` several times, and each
of those processes spent about a second importing the same libraries (pydantic building
the event contract, FastStream, aio-pika, typer, rich) before doing anything. Across the
suite that was a third of the CPU `make test` used.

The fork server is one Python process per test worker that imports those libraries once
and then forks a child for each program a test starts. The child is a real, separate
process, like one started by `subprocess`: its own pid, environment, working directory,
standard streams and session, run with `runpy` as `python -m MODULE` would run it, killed
and signalled like any other. What it does not have is a fresh interpreter: modules
imported before the fork keep whatever they did at import, so only libraries that read no
settings at import are preloaded (the services and platenctl read theirs when they run),
and the programs themselves (`platen.pricing.main`, ...) are run fresh in the child.
`/proc/PID/environ` shows the server's environment, not the child's: a test that reads it
starts its processes with `subprocess` (`exec_services` mark).

The protocol is one SOCK_SEQPACKET connection per child: the request (JSON) with the
child's three standard streams as passed descriptors; the answer is the child's pid, and
later its exit code, or the connection closing if the server died.

Nothing outlives the test worker: a worker killed by a timeout or a crash runs no
teardown, and its services went on running, orphaned (session 13 found a whole cluster).
The server reads its standard input, a pipe the worker holds and never writes: the kernel
closes it when the worker dies, however it dies, and the server then kills every child
(with its process group, when it has one) and exits. Each child also asks the kernel for
SIGKILL when the server dies (PR_SET_PDEATHSIG), for a server killed outright.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import io
import json
import os
import runpy
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Iterable
from pathlib import Path

# Imported once in the server: the heavy, settings-free libraries every service and
# platenctl import. Nothing here may read the environment or start a thread at import.
PRELOAD = (
    "platen.events",
    # The contract loads its models when first named (for the CUPS backend's sake): every
    # program here names most of them, so they are all built once, in the server.
    "platen.events.registry:load_all",
    "platen.messaging.service",
    "platen.operations.metrics",
    # The services' and platenctl's broker setup (and httpx under it): the runtime no
    # longer imports it, so it is named here to stay loaded once.
    "platen.broker_setup.installation",
    "platen.rpc.client",
    "asyncpg",
    "aio_pika",
    "faststream.rabbit",
    "typer",
    "rich.console",
    "rich.table",
    # platenctl's commands (`python -m platen.ctl` runs its `__main__` fresh, which only
    # calls `main`) and typer's command tree made of them: about 80 ms of imports and
    # 50 of typer in each of a run's 2,400 calls.
    "platen.ctl.main:command",
    # job-capture's document libraries: 51 of the 87 ms its modules cost each start.
    "pikepdf",
    "PIL.Image",
    # What each service's program imports (its handlers, store, domain: 10 to 35 ms a
    # start), not the program itself, which the child runs fresh. Possible since they
    # read their settings when used, not at import.
    "imports of platen.job_capture.main",
    "imports of platen.pricing.main",
    "imports of platen.account_ledger.main",
    "imports of platen.notification.main",
    # What the libraries import only when first used, so every child imported it again
    # (23 to 62 modules; about 1.5 % of three e2e files' CPU, measured side by side in
    # docs/development.md, session 23): anyio's asyncio backend (FastStream's
    # task groups at start), httpx's transport (httpcore, h11, certifi: made with the
    # first client, the management API's), a thread pool (asyncio's name lookups) and
    # typer's parameter handling (every platenctl command).
    "anyio._backends._asyncio",
    "anyio.to_thread",
    "httpcore",
    "certifi",
    "concurrent.futures.thread",
    "encodings.idna",
    "typer._adapters",
    "typer._click.decorators",
)

_MAX_REQUEST = 1 << 20
_SERVER_CWD = os.getcwd()


class ForkedProcess:
    """A child of the fork server, with the part of `subprocess.Popen` the tests use."""

    def __init__(self, conn: socket.socket, args: list[str]) -> None:
        self._conn = conn
        self.args = args
        self.returncode: int | None = None
        self.pid = int(conn.recv(64).decode())

    def _read_exit(self, timeout: float | None) -> bool:
        self._conn.settimeout(timeout)
        try:
            data = self._conn.recv(64)
        except (TimeoutError, BlockingIOError):
            return False
        finally:
            self._conn.settimeout(None)
        if data:
            self.returncode = int(data.decode())
        else:
            # The server died before its child: say the child is gone once it is.
            if _alive(self.pid):
                time.sleep(min(timeout or 0.05, 0.05))
                return False
            self.returncode = -1
        self._conn.close()
        return True

    def poll(self) -> int | None:
        if self.returncode is None:
            self._read_exit(0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.returncode is None:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise subprocess.TimeoutExpired(self.args, timeout)
            self._read_exit(left)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class ForkServer:
    """The client side: start the server, then `popen` or `run` programs through it."""

    def __init__(self, folder: Path, preload: tuple[str, ...] = PRELOAD) -> None:
        self.path = folder / "forkserver.sock"
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "platen.testing.forkserver", str(self.path), *preload],
            stdout=subprocess.PIPE,
            # The server's lifeline: never written, closed by the kernel when this
            # process dies, whatever kills it (see the module's documentation).
            stdin=subprocess.PIPE,
        )
        line = self._proc.stdout.readline()  # the server says "ready" once listening
        if line.strip() != b"ready":
            self._proc.kill()
            raise RuntimeError(f"fork server did not start: {line!r}")

    def popen(
        self,
        module: str,
        args: list[str] = (),  # type: ignore[assignment]
        *,
        env: dict[str, str],
        cwd: Path | str | None = None,
        stdin: int | None = None,
        stdout: int | None = None,
        stderr: int | None = None,
        new_session: bool = False,
    ) -> ForkedProcess:
        """Run `python -m module args...` as a child of the server. The streams are file
        descriptors (None: /dev/null for stdin, this process's own for the others);
        `stderr=subprocess.STDOUT` joins stdout."""
        with contextlib.ExitStack() as stack:
            if stdin is None:
                stdin = stack.enter_context(open(os.devnull, "rb")).fileno()
            out = sys.stdout.fileno() if stdout is None else stdout
            err = (
                out
                if stderr == subprocess.STDOUT
                else (sys.stderr.fileno() if stderr is None else stderr)
            )
            request = {
                "module": module,
                "args": list(args),
                "env": dict(env),
                "cwd": str(cwd or os.getcwd()),
                "new_session": new_session,
            }
            conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            try:
                conn.connect(str(self.path))
                socket.send_fds(conn, [json.dumps(request).encode()], [stdin, out, err])
                return ForkedProcess(conn, [module, *args])
            except BaseException:
                conn.close()
                raise

    def run(
        self,
        module: str,
        args: list[str],
        *,
        env: dict[str, str],
        cwd: Path | str | None = None,
        input: str | None = None,
        timeout: float | None = None,
    ) -> subprocess.CompletedProcess:
        """As `subprocess.run(..., capture_output=True, text=True)`: killed on timeout."""
        with (
            tempfile.TemporaryFile() as stdin,
            tempfile.TemporaryFile() as out,
            tempfile.TemporaryFile() as err,
        ):
            if input is not None:
                stdin.write(input.encode())
                stdin.seek(0)
            proc = self.popen(
                module,
                args,
                env=env,
                cwd=cwd,
                stdin=stdin.fileno(),
                stdout=out.fileno(),
                stderr=err.fileno(),
            )
            try:
                code = proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
                raise
            out.seek(0)
            err.seek(0)
            return subprocess.CompletedProcess(
                proc.args,
                code,
                out.read().decode(errors="replace"),
                err.read().decode(errors="replace"),
            )

    @property
    def pid(self) -> int:
        return self._proc.pid

    def close(self) -> None:
        self._proc.stdin.close()
        self._proc.terminate()
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(5)
        self._proc.stdout.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


# ---- the server -------------------------------------------------------------------------


_PR_SET_PDEATHSIG = 1  # prctl(2)
_PR_SET_NAME = 15


def _name(module: str) -> None:
    """In the forked child: the name `ps`, `top` and process accounting show, the program's
    (`account_ledger`, `ctl`), instead of the fork server's `python`: a run's CPU can then
    be told apart by service."""
    parts = module.split(".")
    name = parts[1] if len(parts) > 1 and parts[0] == "platen" else parts[0]
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_NAME, ctypes.c_char_p(name.encode()[:15]), 0, 0, 0)


def _die_with(server_pid: int) -> None:
    """In the forked child: be killed when the server dies. (The signal is sent when the
    thread that forked exits: the server forks from its only thread.) A server already
    gone before the request was made would never send it: leave now."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")
    if os.getppid() != server_pid:
        os._exit(1)


def _child(request: dict, fds: list[int], server_pid: int) -> None:
    """In the forked child: become the requested program, then exit with its code."""
    code = 1
    try:
        _die_with(server_pid)
        _name(request["module"])
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD, signal.SIGTERM):  # SIGPIPE stays ignored, as Python has it
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if request["new_session"]:
            os.setsid()
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        for fd in fds:
            if fd > 2:
                os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        # The streams were made for the server; a fresh interpreter would make them for
        # these descriptors and this environment (unbuffered when asked, so a log file
        # has every line even after a SIGKILL).
        unbuffered = bool(os.environ.get("PYTHONUNBUFFERED"))
        sys.stdin = sys.__stdin__ = io.TextIOWrapper(io.FileIO(0, "r", closefd=False))
        for fd, name in ((1, "stdout"), (2, "stderr")):
            raw = io.FileIO(fd, "w", closefd=False)
            stream = io.TextIOWrapper(
                raw if unbuffered else io.BufferedWriter(raw),
                errors="backslashreplace",
                write_through=unbuffered,
                line_buffering=fd == 2 or raw.isatty(),
            )
            setattr(sys, name, stream)
            setattr(sys, f"__{name}__", stream)
        sys.argv = [request["module"], *request["args"]]
        if sys.path and sys.path[0] in ("", _SERVER_CWD):  # `python -m` puts its cwd first
            sys.path[0] = request["cwd"]
        try:
            runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as stop:
            if stop.code is None:
                code = 0
            elif isinstance(stop.code, int):
                code = stop.code
            else:
                print(stop.code, file=sys.stderr)
                code = 1
        except BaseException:
            traceback.print_exc()
            code = 1
    finally:
        # What interpreter shutdown would do, then leave without running the server's
        # own cleanup.
        with contextlib.suppress(BaseException):
            threading._shutdown()  # type: ignore[attr-defined]
        with contextlib.suppress(BaseException):
            import atexit

            atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(BaseException):
                stream.flush()
        os._exit(code)


def warm(preload: Iterable[str]) -> None:
    """Import each `module` of `preload`; for a `module:function`, also call the
    function, which makes now what each program would make again; for `imports of
    module`, import it and forget it, keeping what it imported: a program `runpy` runs
    must not be imported already (it would run beside that copy, and runpy warns)."""
    for entry in preload:
        if entry.startswith("imports of "):
            name = entry.removeprefix("imports of ")
            importlib.import_module(name)
            del sys.modules[name]
            package, _, leaf = name.rpartition(".")
            if package:
                delattr(sys.modules[package], leaf)
            continue
        name, _, function = entry.partition(":")
        module = importlib.import_module(name)
        if function:
            getattr(module, function)()


def serve(path: str, preload: list[str]) -> None:
    warm(preload)
    if threading.active_count() != 1:  # forking a process with threads is unsafe
        raise RuntimeError(f"preloading started threads: {threading.enumerate()}")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(path)
    listener.listen(64)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # only to wake the loop
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, "accept")
    selector.register(wake_r, selectors.EVENT_READ, "signal")
    selector.register(sys.stdin, selectors.EVENT_READ, "parent")
    server_pid = os.getpid()
    children: dict[int, socket.socket] = {}
    leaders: set[int] = set()  # the children in a session (a process group) of their own
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    while not stopping:
        for key, _ in selector.select():
            if key.data == "accept":
                conn, _ = listener.accept()
                try:
                    data, fds, _flags, _addr = socket.recv_fds(conn, _MAX_REQUEST, 3)
                    request = json.loads(data)
                except (OSError, ValueError):
                    conn.close()
                    continue
                if len(fds) != 3:
                    for fd in fds:
                        os.close(fd)
                    conn.close()
                    continue
                pid = os.fork()
                if pid == 0:
                    selector.close()
                    listener.close()
                    conn.close()
                    os.close(wake_r)
                    os.close(wake_w)
                    _child(request, fds, server_pid)
                for fd in fds:
                    os.close(fd)
                children[pid] = conn
                if request["new_session"]:
                    leaders.add(pid)
                with contextlib.suppress(OSError):
                    conn.send(str(pid).encode())
            elif key.data == "parent":
                if not os.read(sys.stdin.fileno(), 4096):  # the worker is gone
                    _kill_all(children, leaders)
                    return
            else:
                with contextlib.suppress(BlockingIOError):
                    os.read(wake_r, 4096)
        # Reap every child that has ended and tell its client the exit code.
        while children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            conn = children.pop(pid, None)
            leaders.discard(pid)
            if conn is not None:
                with contextlib.suppress(OSError):
                    conn.send(str(os.waitstatus_to_exitcode(status)).encode())
                conn.close()


def _kill_all(children: dict[int, socket.socket], leaders: set[int]) -> None:
    """SIGKILL every child still running, a session leader with its process group (the
    programs a service runs); they are not waited for: the server leaves, and init reaps
    them."""
    for pid in children:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if pid in leaders:
                os.killpg(pid, signal.SIGKILL)
            else:
                os.kill(pid, signal.SIGKILL)


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2:])
