"""The print server's agent: one long-running process beside cupsd that talks to Platen
for every job's backend (`platen-print-agent`, or `python -m platen.cups_backend.agent`).

CUPS starts the `platen` backend once per job. Started bare, that is a Python start, the
import of the broker client and the contract, and a broker connection, every job: most
of the time Platen added between `lp` and the printer (bench/cups_latency.py). The agent
pays those once. It signs in as the print server (the backend's own configuration and
credential), keeps one broker connection, and serves each backend over a Unix socket
(`agent_link` says how they talk): the status question and submission, the wait for the
decision (pushed to it under the job's decision key), heartbeats, the outcome and
cancellations. The backend still prepares the document and runs the printer's backend
itself, and does everything itself when the agent is not there (`backend`).

Only the backend's user may talk to it. The socket is in a folder only its owner can
enter (0700, made so if missing; an agent refuses to start in a folder others may write
to), the socket itself is 0600, and each connection's peer is checked (SO_PEERCRED):
root (CUPS runs a 0700 backend as root) or the agent's own user. Anyone else could
otherwise submit, resume or cancel other users' jobs as the print server.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import stat
import struct
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import structlog

from platen.cups_backend import main, timings
from platen.cups_backend.agent_link import PROTOCOL
from platen.cups_backend.config import BackendConfig, PrinterPolicy, load
from platen.cups_backend.decisions import Invalid, Offline, Refused
from platen.events.base import canonical_login
from platen.logs import configure_logging
from platen.rpc import Client, connect

log = structlog.get_logger("platen.print_agent")

# The folder that holds `platen/cups_backend`: a warm backend's whole path (`python -S`).
BACKEND_ROOT = str(Path(__file__).resolve().parents[2])

# How often the agent checks, between jobs, that its broker connection is up (and makes
# a new one), so that a job after a broker restart does not pay for the connection.
KEEP_WARM_SECONDS = 5.0
# A backend's request is one line; a document never travels on the socket (its path in
# the print server's state folder does).
MAX_LINE = 1024 * 1024
# Connections waiting to be accepted: asyncio's own default for a server.
LISTEN_BACKLOG = 100
# Backends kept started ahead of their jobs (`warm`): one takes each job a `shim` hands
# over, and another is started at once. Two, so that a second job arriving while the
# first one's replacement starts does not wait for it.
WARM_BACKENDS = 2
# How long a shim waits for a warm backend (all taken, or failing to start) before the
# agent refuses it and it runs the full backend itself.
WARM_WAIT_SECONDS = 5.0


class SharedConnection:
    """One broker connection (and reply queue) for every job, made again when lost.

    While it is down, every job that needs it waits for the same attempt to connect: with
    the broker unreachable an attempt can last its whole timeout (10 s: a broker that
    accepts the connection but does not answer), and jobs taking turns would wait one
    attempt each, the last of N jobs N attempts. Each learns the outcome of the one
    attempt under way, and the next job to ask after a failure starts the next."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._client: Client | None = None
        self._stack: contextlib.AsyncExitStack | None = None
        self._attempt: asyncio.Future[Client] | None = None
        self.attempts = 0  # connections tried since the start (the tests count them)

    @property
    def up(self) -> bool:
        client = self._client
        return (
            client is not None and not client.connection.is_closed and not client.channel.is_closed
        )

    async def client(self) -> Client:
        if self.up:
            assert self._client is not None
            return self._client
        if self._attempt is None:
            self._attempt = asyncio.ensure_future(self._connect())
            self._attempt.add_done_callback(self._attempt_over)
        # Shielded: a job that stops waiting (its backend left) does not cancel the
        # attempt the other jobs wait for.
        return await asyncio.shield(self._attempt)

    def _attempt_over(self, attempt: asyncio.Future[Client]) -> None:
        self._attempt = None
        if not attempt.cancelled():
            attempt.exception()  # seen here, should every job waiting for it have left

    async def _connect(self) -> Client:
        await self._drop()
        self.attempts += 1
        stack = contextlib.AsyncExitStack()
        try:
            client = await stack.enter_async_context(connect(self.url))
        except BaseException:
            await stack.aclose()
            raise
        self._client, self._stack = client, stack
        log.info("agent.broker_connected")
        return client

    @contextlib.asynccontextmanager
    async def lease(self) -> AsyncIterator[Client]:
        """The connection for one request or one wait (`main.Session`); not closed after."""
        yield await self.client()

    async def _drop(self) -> None:
        stack, self._client, self._stack = self._stack, None, None
        if stack is not None:
            with contextlib.suppress(Exception):
                await stack.aclose()

    async def close(self) -> None:
        attempt = self._attempt
        if attempt is not None:
            attempt.cancel()
            with contextlib.suppress(BaseException):
                await attempt
        await self._drop()


def peer_credentials(sock: socket.socket) -> tuple[int, int, int]:
    """The connecting process's pid, uid and gid, as the kernel saw them at connect()."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, gid = struct.unpack("3i", raw)
    return pid, uid, gid


class Warm:
    """One backend waiting for its job: its process and the agent's end of their socket."""

    def __init__(self, proc: asyncio.subprocess.Process, control: socket.socket) -> None:
        self.proc = proc
        self.control = control
        self.taken = asyncio.get_running_loop().create_future()


class WarmBackends:
    """Backends started ahead of their jobs (`warm`), WARM_BACKENDS of them kept ready.

    Each is a `python -m platen.cups_backend.warm` of the agent's own, in a session of
    its own: stopping the agent (SIGTERM to its process group) leaves the jobs under way
    to finish, as backends cupsd started would; a waiting one sees the end of its socket
    and exits."""

    def __init__(self, count: int = WARM_BACKENDS) -> None:
        self.count = count
        self.ready: asyncio.Queue[Warm] = asyncio.Queue()
        self.tasks: list[asyncio.Task[None]] = []
        self.running: set[asyncio.subprocess.Process] = set()

    def start(self) -> None:
        self.tasks = [asyncio.create_task(self._keep_one()) for _ in range(self.count)]

    async def _keep_one(self) -> None:
        while True:
            try:
                warm = await self._start_one()
            except Exception as exc:
                log.warning("agent.warm_backend_failed", error=f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(1.0)
                continue
            await self.ready.put(warm)
            ended = asyncio.ensure_future(warm.proc.wait())
            # Taken by a job, or ended while waiting (it crashed): either way, another.
            await asyncio.wait({warm.taken, ended}, return_when=asyncio.FIRST_COMPLETED)

    async def _start_one(self) -> Warm:
        ours, theirs = socket.socketpair()
        try:
            # Started as cupsd's wrapper starts the full backend (`python -S`, the
            # backend's own folder its path): the job imports what it needs from there.
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-S",
                "-m",
                "platen.cups_backend.warm",
                str(theirs.fileno()),
                pass_fds=[theirs.fileno()],
                stdin=asyncio.subprocess.DEVNULL,
                start_new_session=True,
                env={**os.environ, "PYTHONPATH": BACKEND_ROOT},
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self.running.add(proc)
        reaped = asyncio.ensure_future(proc.wait())
        reaped.add_done_callback(lambda _: self.running.discard(proc))
        ours.setblocking(False)
        loop = asyncio.get_running_loop()
        try:
            # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow a
            # cancellation that comes as the backend answers, and the agent's stop then
            # waited for this task for ever (seen in a CI run).
            async with asyncio.timeout(60):
                line = await loop.sock_recv(ours, 16)
        except BaseException:
            ours.close()
            raise
        if line != b"ready\n":
            ours.close()
            raise RuntimeError(f"the warm backend said {line!r}")
        return Warm(proc, ours)

    async def hand_over(self, fd: int) -> int:
        """Give the connection `fd` to a warm backend; its pid. TimeoutError when none
        is ready in WARM_WAIT_SECONDS."""
        async with asyncio.timeout(WARM_WAIT_SECONDS):
            while True:
                warm = await self.ready.get()
                if warm.proc.returncode is not None:
                    warm.control.close()
                    continue
                try:
                    socket.send_fds(warm.control, [b"job"], [fd])
                except OSError:
                    warm.control.close()
                    continue  # ended meanwhile: the next one
                warm.control.close()
                warm.taken.set_result(None)
                return warm.proc.pid

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        if self.tasks:
            # Bounded: a stop must never wait on a task that did not take its cancel.
            _, left = await asyncio.wait(self.tasks, timeout=5)
            if left:
                log.warning("agent.warm_tasks_not_stopped", count=len(left))
        # The waiting ones see their socket's end and exit; those with a job finish it.
        while not self.ready.empty():
            self.ready.get_nowait().control.close()


class BadRequest(Exception):
    """A request the agent cannot take; the backend is told and does the job itself."""


class Conversation:
    """One backend's job, on one connection."""

    def __init__(self, agent: Agent, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.agent = agent
        self.config = agent.config
        self.reader = reader
        self.writer = writer

    def send(self, **message: Any) -> None:
        if self.writer.is_closing():
            return  # the backend has gone (cupsd killed it): the work goes on regardless
        self.writer.write(json.dumps(message).encode() + b"\n")

    def say(self, kind: str, text: str) -> None:
        """A line for cupsd, which the backend prints as its own."""
        self.send(say=[kind, text])

    def mark(self, step: str) -> None:
        self.send(mark=step, at=timings.now())

    async def run(self) -> None:
        while True:
            try:
                line = await self.reader.readline()
            except (ValueError, ConnectionError):  # longer than MAX_LINE, or reset
                return
            if not line:
                return
            try:
                request = json.loads(line)
                if not isinstance(request, dict):
                    raise BadRequest("a request is a JSON object")
                answer = await self.handle(request)
            except (ValueError, KeyError, TypeError, BadRequest) as exc:
                log.warning("agent.bad_request", error=f"{type(exc).__name__}: {exc}")
                self.send(refused=f"bad request: {exc}")
                return
            if answer is None:
                return  # the backend left mid-request
            self.send(**answer)
            await self.writer.drain()

    async def handle(self, request: dict[str, Any]) -> dict[str, Any] | None:
        op = request["op"]
        if op == "login":
            if request.get("protocol") != PROTOCOL:
                raise BadRequest(f"this agent speaks protocol {PROTOCOL}")
            return {"login": canonical_login(str(request["user"]), self.config.login_domains)}
        if op == "decide":
            return await self.decide(
                request["fields"],
                request["document"],
                request["policy"],
                # Sent by backends since session 24; an older one's jobs are asked about first.
                new=request.get("new") is True,
            )
        if op == "hand_over":
            if request.get("protocol") != PROTOCOL:
                raise BadRequest(f"this agent speaks protocol {PROTOCOL}")
            return await self.hand_over()
        job_id = uuid.UUID(
            str(request["job_id"] if op != "report" else request["outcome"]["job_id"])
        )
        structlog.contextvars.bind_contextvars(job_id=str(job_id))
        session = self.agent.shared.lease
        if op == "heartbeat":
            try:
                await main.heartbeat(self.config, job_id, session=session)
            except Exception as exc:
                log.info("agent.heartbeat_failed", error=f"{type(exc).__name__}: {exc}")
                return {"error": f"{type(exc).__name__}: {exc}"}
            return {"ok": True}
        if op == "report":
            # Carried through even if the backend is killed meanwhile: the printer has
            # acted, and Platen must hear of it.
            return await self.answer(
                main.report(
                    self.config,
                    request["outcome"],
                    float(request["wait"]),
                    session=session,
                    say=self.say,
                ),
                lambda _: {"ok": True},
            )
        if op == "cancel":
            return await self.answer(
                main.cancel(
                    self.config, job_id, float(request["wait"]), session=session, say=self.say
                ),
                lambda state: {"state": state},
            )
        raise BadRequest(f"unknown op {op!r}")

    async def hand_over(self) -> dict[str, Any] | None:
        """Give this connection, a `shim`'s, to a warm backend, which takes the job from
        the shim directly (its descriptors cannot pass through this stream). The shim
        sends nothing more until the warm backend greets it, so nothing of it is read
        here; the agent's own copy of the connection is closed after."""
        self.writer.transport.pause_reading()
        sock = self.writer.get_extra_info("socket")
        shim_pid, _, _ = peer_credentials(sock)
        fd = os.dup(sock.fileno())
        try:
            pid = await self.agent.warm.hand_over(fd)
        except TimeoutError:
            log.warning("agent.no_warm_backend")
            self.writer.transport.resume_reading()
            return {"refused": "no backend ready"}
        finally:
            os.close(fd)
        # No job id yet: the warm backend reads the job from the shim after this.
        log.info("agent.handed_over", shim_pid=shim_pid, backend_pid=pid)
        return None

    async def answer(self, work, shape) -> dict[str, Any]:
        try:
            result = await work
        except Offline as exc:
            return {"offline": exc.args[0]}
        except Refused as exc:
            return {"refused_job": str(exc)}
        except Invalid as exc:
            return {"invalid": str(exc)}
        return shape(result)

    async def decide(
        self, fields: dict[str, Any], document: str, policy: dict[str, Any], *, new: bool = False
    ) -> dict[str, Any] | None:
        job_id = str(uuid.UUID(str(fields["job_id"])))
        structlog.contextvars.bind_contextvars(job_id=job_id)
        path = await asyncio.to_thread(Path(document).resolve)
        # The backend keeps the document in the print server's state folder (job_ids);
        # the agent reads nothing else, whoever asks.
        if not path.is_relative_to(self.agent.state_dir):
            raise BadRequest("the document is not in the print server's state folder")
        data = await asyncio.to_thread(path.read_bytes)
        log.info("agent.deciding", printer=fields.get("printer"), bytes=len(data))
        started = time.monotonic()
        work = asyncio.create_task(
            self.answer(
                main.decide(
                    self.config,
                    PrinterPolicy(**policy),
                    fields,
                    data,
                    session=self.agent.shared.lease,
                    say=self.say,
                    mark=self.mark,
                    new=new,
                ),
                lambda decision: {"state": decision.state, "reason": decision.reason},
            )
        )
        # While it waits the backend sends nothing: the end of its side means it has gone
        # (cupsd cancelled the job and the backend asks for the cancellation itself).
        left = asyncio.create_task(self.reader.read(1))
        done, _ = await asyncio.wait({work, left}, return_when=asyncio.FIRST_COMPLETED)
        if work not in done:
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await work
            log.info("agent.backend_left", waited_ms=round((time.monotonic() - started) * 1000))
            return None
        # Gone before the next request is read: a reader takes one waiting call at a time.
        left.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await left
        answer = work.result()
        log.info(
            "agent.decided",
            printer=fields.get("printer"),
            waited_ms=round((time.monotonic() - started) * 1000),
            **answer,
        )
        return answer


class Agent:
    def __init__(self, config: BackendConfig) -> None:
        self.config = config
        self.shared = SharedConnection(config.amqp_url)
        self.warm = WarmBackends()
        self.state_dir = Path(config.state_dir).resolve()
        # Whom the agent serves: root (CUPS runs a backend of mode 0700 as root) and its
        # own user (an agent run as the backend's user, where that is not root).
        self.allowed_uids = {0, os.geteuid()}

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        pid, uid, _ = peer_credentials(sock)
        try:
            if uid not in self.allowed_uids:
                log.warning("agent.peer_refused", peer_pid=pid, peer_uid=uid)
                writer.write(
                    json.dumps({"refused": "not the CUPS backend's user"}).encode() + b"\n"
                )
                writer.write_eof()
                # What it sent is read and dropped, unanswered: closing on unread data
                # would reset the connection before the refusal could be read.
                with contextlib.suppress(TimeoutError, ConnectionError):
                    await asyncio.wait_for(reader.read(MAX_LINE), 1.0)
                return
            await Conversation(self, reader, writer).run()
        except Exception:
            log.exception("agent.conversation_failed", peer_pid=pid)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def keep_warm(self) -> None:
        reachable = True
        while True:
            if not self.shared.up:
                try:
                    await self.shared.client()
                    reachable = True
                except Exception as exc:
                    if reachable:  # said once per outage, not every few seconds
                        log.warning(
                            "agent.broker_unreachable", error=f"{type(exc).__name__}: {exc}"
                        )
                    reachable = False
            await asyncio.sleep(KEEP_WARM_SECONDS)


def private_folder(folder: Path) -> None:
    """The socket's folder: made 0700 if missing; refused if others may write to it (they
    could put a socket of their own in the agent's place) or it is not the agent's or
    root's."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    info = folder.stat()
    if info.st_uid not in (0, os.geteuid()) or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise SystemExit(
            f"platen-print-agent: {folder} may be written by others; "
            "make it owned by root or this user, mode 0700 or 0750"
        )


def listening(path: Path) -> socket.socket:
    """The agent's socket, at `path` only once it listens: bound under another name in
    the same folder, then renamed. A socket file that is there before its `listen` turns
    a backend (or anything waiting for the file) away with "connection refused"."""
    staging = path.with_name(f".{path.name}.{os.getpid()}")
    staging.unlink(missing_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    umask = os.umask(0o177)  # the socket is made 0600, never briefly open to others
    try:
        sock.bind(str(staging))
        sock.listen(LISTEN_BACKLOG)
        os.replace(staging, path)
    except BaseException:
        sock.close()
        staging.unlink(missing_ok=True)
        raise
    finally:
        os.umask(umask)
    return sock


async def serve(config: BackendConfig, stop: asyncio.Event | None = None) -> None:
    path = Path(config.agent_socket)
    private_folder(path.parent)
    path.unlink(missing_ok=True)  # noqa: ASYNC240 (before serving) left by an agent that died
    agent = Agent(config)
    server = await asyncio.start_unix_server(agent.serve, sock=listening(path), limit=MAX_LINE)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    warm = asyncio.create_task(agent.keep_warm())
    agent.warm.start()
    log.info("agent.started", socket=str(path), server_id=config.server_id)
    try:
        await stop.wait()
    finally:
        log.info("agent.stopping")
        server.close()
        path.unlink(missing_ok=True)  # noqa: ASYNC240 (stopping)
        warm.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await warm
        await agent.warm.close()
        await agent.shared.close()


def run(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="platen-print-agent",
        description="Talk to Platen for the print server's `platen` backends "
        "(settings: PLATEN_BACKEND_CONFIG, as the backend's).",
    )
    parser.add_argument("--log-level", default=os.environ.get("PLATEN_LOG_LEVEL", "INFO"))
    args = parser.parse_args(argv)
    configure_logging("print-agent", args.log_level)
    config = load()
    if not config.agent_socket:
        raise SystemExit("platen-print-agent: agent_socket is empty in the backend's settings")
    asyncio.run(serve(config))


if __name__ == "__main__":
    run()
