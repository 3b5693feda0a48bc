"""Document analysis isolated from the service: a process of its own for each document.

A document is hostile until analysed: a few hundred bytes of PDF can cost seconds of
pikepdf, a few bytes of PostScript gigabytes of Ghostscript. So nothing of it runs in
the service. `IsolatedAnalyser.analyse` starts `analysis_worker` with:

- an environment of PATH, LANG and TMPDIR only (no database URL, no broker credential,
  no GS_OPTIONS a host could have set), and isolated mode (`python -I`), so PYTHON*
  variables and the user's site-packages play no part;
- a temporary folder of its own (working directory and TMPDIR, so Ghostscript's gs_*
  files go there too), removed afterwards whatever happened;
- limits on address space, CPU seconds and file size (set by the worker before it reads
  the document; Ghostscript inherits them), and one wall-clock deadline over every stage,
  pikepdf included, that this side enforces by killing the worker's whole process group.

At most `workers` documents are analysed at once, and at most `workers_per_owner` of one
owner's (the user a job is for; all quotes share one owner), so a user sending hostile
documents holds one worker and waits for it, while other users' documents take the
others. At most `queued_bytes` of documents are admitted (running or waiting for a
worker), `queued_bytes_per_owner` of one owner's; a document beyond either is refused
as "busy" at once rather than held, so a flood costs its sender, not the memory of the
service. Every refusal is an `UnreadableDocument` whose text the user is shown
(job.denied).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import contextvars
import json
import math
import os
import shutil
import signal
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import structlog

from platen.job_capture.analysis import DEFAULT_TIMEOUT, Analysis, UnreadableDocument

log = structlog.get_logger(__name__)

TOO_LONG = "the document takes too long to analyse (the limit is {:g} seconds)"
TOO_MUCH_CPU = "the document needs too much processing time to analyse"
BUSY = (
    "Platen is analysing too many documents at once; the document was not printed,"
    " print it again in a moment"
)
BUSY_OWNER = (
    "too many of your documents are being analysed at once; the document was not printed,"
    " print it again in a moment"
)
# What the worker may write to stdout: one line, under 50 bytes a page.
MAX_ANSWER = 2 * 1024 * 1024


def _env_number(name: str, default: float) -> float:
    return float(os.environ.get(name, str(default)))


@dataclass(frozen=True)
class Limits:
    """What one analysis may use. Defaults from PLATEN_ANALYSIS_* (docs/admin-guide.md)."""

    timeout: float = DEFAULT_TIMEOUT
    memory_bytes: int = 1024 * 2**20
    file_bytes: int = 256 * 2**20
    workers: int = 4
    workers_per_owner: int = 1
    queued_bytes: int = 128 * 2**20
    queued_bytes_per_owner: int = 40 * 2**20
    yield_after: float = 1.0
    # Ghostscript loaded once in the workers' parent (`resident_ghostscript`); off: `gs`
    # is started for every document, as before (to compare, or if libgs misbehaves).
    resident_ghostscript: bool = True
    # A child forked ahead of its document, its device open, waiting for it
    # (`analysis_worker.spare`); off: each document's child is forked when it comes.
    spare_child: bool = True
    # Fewer page faults in each child: the heap it allocates anew in transparent huge
    # pages, where the kernel allows them, Ghostscript's garbage collected every 64 MB,
    # and the parent's Python objects out of a child's collections
    # (`resident_ghostscript.HUGE_HEAP_BYTES`, `GC_THRESHOLD_BYTES`,
    # `analysis_worker.frozen_fork`); off: as before.
    fewer_faults: bool = True
    # The PDF interpreter's context made in the workers' parent, before any document,
    # for each PDF's child to take (`resident_ghostscript.PDF_CONTEXT_AHEAD`); off: each
    # child makes its own, as before.
    pdf_context_ahead: bool = True

    @classmethod
    def from_environment(cls) -> Limits:
        return cls(
            timeout=_env_number("PLATEN_ANALYSIS_TIMEOUT_SECONDS", DEFAULT_TIMEOUT),
            memory_bytes=int(_env_number("PLATEN_ANALYSIS_MEMORY_MB", 1024)) * 2**20,
            file_bytes=int(_env_number("PLATEN_ANALYSIS_FILE_MB", 256)) * 2**20,
            workers=int(_env_number("PLATEN_ANALYSIS_WORKERS", 4)),
            workers_per_owner=int(_env_number("PLATEN_ANALYSIS_WORKERS_PER_USER", 1)),
            queued_bytes=int(_env_number("PLATEN_ANALYSIS_QUEUE_MB", 128)) * 2**20,
            queued_bytes_per_owner=int(_env_number("PLATEN_ANALYSIS_QUEUE_MB_PER_USER", 40))
            * 2**20,
            yield_after=_env_number("PLATEN_ANALYSIS_YIELD_AFTER_SECONDS", 1.0),
            resident_ghostscript=os.environ.get("PLATEN_ANALYSIS_RESIDENT_GHOSTSCRIPT", "1") != "0",
            spare_child=os.environ.get("PLATEN_ANALYSIS_SPARE_CHILD", "1") != "0",
            fewer_faults=os.environ.get("PLATEN_ANALYSIS_FEWER_FAULTS", "1") != "0",
            pdf_context_ahead=os.environ.get("PLATEN_ANALYSIS_PDF_CONTEXT_AHEAD", "1") != "0",
        )

    @property
    def cpu_seconds(self) -> int:
        # The wall-clock deadline is the limit; CPU time is a net under it for a worker
        # whose kill went astray. Each process (the worker, Ghostscript) has its own.
        return math.ceil(self.timeout) + 1


def scrubbed_environment(tmp: str) -> dict[str, str]:
    """All a worker is given of the service's environment."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "TMPDIR": tmp,
    }


class IsolatedAnalyser:
    # What the workers' parent runs (after `python -I`).
    worker: tuple[str, ...] = ("-m", "platen.job_capture.analysis_worker")

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits.from_environment()
        self._slots = asyncio.Semaphore(self.limits.workers)
        self.queued = 0  # bytes of documents admitted and not yet analysed
        self.running = 0  # analyses holding a worker slot now
        # Per owner with documents admitted: bytes admitted, and the owner's own slots.
        self._owners: dict[str, tuple[int, asyncio.Semaphore]] = {}
        self._server: _WorkerParent | None = None
        self._starting = asyncio.Lock()  # one parent, however many documents come at once

    async def analyse(self, document: bytes, owner: str = "") -> Analysis:
        """What `document` is; `UnreadableDocument` with the reason the user sees if it
        cannot be analysed or goes over any limit."""
        size = len(document)
        owned, slots = self._owners.get(owner, (0, None))
        # A document alone is always admitted (its size is capped before it gets here).
        if owned and owned + size > self.limits.queued_bytes_per_owner:
            log.warning("analysis queue full for one owner", queued_bytes=owned, size=size)
            raise UnreadableDocument(BUSY_OWNER)
        if self.queued and self.queued + size > self.limits.queued_bytes:
            log.warning("analysis queue full", queued_bytes=self.queued, size=size)
            raise UnreadableDocument(BUSY)
        slots = slots or asyncio.Semaphore(self.limits.workers_per_owner)
        self._owners[owner] = (owned + size, slots)
        self.queued += size
        try:
            async with slots, self._slots:
                self.running += 1
                try:
                    return await self._run(document)
                finally:
                    self.running -= 1
        finally:
            self.queued -= size
            left = self._owners[owner][0] - size
            if left:
                self._owners[owner] = (left, slots)
            else:
                del self._owners[owner]

    async def _run(self, document: bytes) -> Analysis:
        limits = self.limits
        tmp = tempfile.mkdtemp(prefix="platen-analysis-", dir=scratch_folder())
        server: _WorkerParent | None = None
        request_id = 0
        try:
            await asyncio.to_thread(Path(tmp, "document").write_bytes, document)
            server = await self._worker_parent()
            request_id = server.send(
                {
                    "dir": tmp,
                    "memory_bytes": limits.memory_bytes,
                    "cpu_seconds": limits.cpu_seconds,
                    "file_bytes": limits.file_bytes,
                    # The child stops Ghostscript itself a little before the deadline, so
                    # a document that is merely slow gets the same reason either way.
                    "timeout": max(0.1, limits.timeout - 0.5),
                }
            )
            try:
                async with asyncio.timeout(limits.timeout):
                    exit_code = await self._ended_yielding(server, request_id)
            except TimeoutError:
                raise UnreadableDocument(TOO_LONG.format(limits.timeout)) from None
            return _answer(exit_code, tmp, limits)
        finally:
            if server is not None and request_id:
                server.forget(request_id)  # kills what is left of the child, if anything
            # Off the event loop: unlinking a large document can take the disk a while,
            # and every other job's messages wait on this loop.
            await asyncio.to_thread(shutil.rmtree, tmp, ignore_errors=True)

    async def _ended_yielding(self, server: _WorkerParent, request_id: int) -> int:
        """The child's exit status; a child still running after `yield_after` seconds
        gets the lowest CPU priority, so that short analyses (other users' normal
        documents) are not slowed down by long, likely hostile, ones."""
        ended = server.ended(request_id)
        try:
            return await asyncio.wait_for(asyncio.shield(ended), self.limits.yield_after)
        except TimeoutError:
            server.lower_priority(request_id)
        return await asyncio.shield(ended)

    async def _worker_parent(self) -> _WorkerParent:
        """The running workers' parent; a new one if there is none or it died."""
        async with self._starting:
            if self._server is None or not self._server.alive:
                # In a context of its own: the parent (and its reader task) serves every
                # later document, so its lines must not carry the fields of the job whose
                # delivery happened to start it.
                worker = self.worker
                if not self.limits.resident_ghostscript:
                    worker = (*worker, "--no-resident")
                if not self.limits.spare_child:
                    worker = (*worker, "--no-spare")
                if not self.limits.fewer_faults:
                    worker = (*worker, "--no-fewer-faults")
                if not self.limits.pdf_context_ahead:
                    worker = (*worker, "--no-pdf-context-ahead")
                self._server = await asyncio.create_task(
                    _WorkerParent.start(worker), context=contextvars.Context()
                )
            return self._server


class _WorkerParent:
    """The long-lived `analysis_worker` process: it forks a child per document."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.alive = True
        self._next = 0
        self._pids: dict[int, int] = {}
        self._ends: dict[int, asyncio.Future[int]] = {}
        self._kill_when_started: set[int] = set()  # forgotten before their pid came
        self._lower_when_started: set[int] = set()  # yielding before their pid came
        self.peak_kb = 0  # the largest child's peak memory, Ghostscript included
        self.ghostscript = ""  # "libgs" (loaded once, in the parent) or "gs" (per document)
        self._reader = asyncio.create_task(self._read(), name="analysis-worker-parent")

    @classmethod
    async def start(cls, worker: tuple[str, ...]) -> _WorkerParent:
        home = tempfile.gettempdir()
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-I",
            *worker,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=scrubbed_environment(home),
            cwd=home,
            start_new_session=True,
        )
        log.info("analysis worker parent started", pid=process.pid)
        return cls(process)

    def send(self, request: dict) -> int:
        self._next += 1
        self._ends[self._next] = asyncio.get_running_loop().create_future()
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps({"id": self._next, **request}) + "\n").encode())
        return self._next

    def ended(self, request_id: int) -> asyncio.Future[int]:
        """The child's exit status, once it has ended (negative: the signal)."""
        return self._ends[request_id]

    def lower_priority(self, request_id: int) -> None:
        pid = self._pids.get(request_id)
        if pid is None:
            self._lower_when_started.add(request_id)
        else:
            _lower_priority(pid)

    def forget(self, request_id: int) -> None:
        """Done with a request: its child, and whatever that started, are killed if they
        still run (a deadline, a cancelled delivery)."""
        end = self._ends.pop(request_id, None)
        pid = self._pids.pop(request_id, None)
        if end is not None and not end.done():
            if pid is None:
                self._kill_when_started.add(request_id)
            else:
                _kill_group(pid)

    async def _read(self) -> None:
        assert self.process.stdout is not None
        cancelled = False
        try:
            while line := await self.process.stdout.readline():
                message = json.loads(line)
                if "ghostscript" in message:
                    self.ghostscript = message["ghostscript"]
                    # Asked for and not had: every document costs a `gs` start again.
                    unexpected = message.get("why", "--no-resident") != "--no-resident"
                    (log.warning if unexpected else log.info)(
                        "analysis worker parent ready", **message
                    )
                    continue
                request_id = message["id"]
                if request_id in self._kill_when_started and "pid" in message:
                    self._kill_when_started.discard(request_id)
                    _kill_group(message["pid"])
                if request_id not in self._ends:
                    continue  # forgotten already
                if "pid" in message:
                    self._pids[request_id] = message["pid"]
                    if request_id in self._lower_when_started:
                        self._lower_when_started.discard(request_id)
                        _lower_priority(message["pid"])
                elif not self._ends[request_id].done():
                    self._ends[request_id].set_result(message["exit"])
                    if message.get("peak_kb"):
                        self.peak_kb = max(self.peak_kb, message["peak_kb"])
        except asyncio.CancelledError:
            cancelled = True  # the service is stopping
            raise
        finally:
            # It died (or was killed): its children's fate is unknown; a new one serves
            # the next document.
            self.alive = False
            if not cancelled:
                log.error("analysis worker parent ended", returncode=self.process.returncode)
            for request_id, end in self._ends.items():
                if not end.done():
                    end.set_exception(RuntimeError("the analysis worker parent ended"))
                if (pid := self._pids.get(request_id)) is not None:
                    _kill_group(pid)


def _lower_priority(pid: int) -> None:
    """The lowest CPU priority for a child and what it started (its process group)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.setpriority(os.PRIO_PGRP, pid, 19)


def _kill_group(pid: int) -> None:
    """Kill a child and whatever it started (Ghostscript: the child leads its own group)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def _answer(exit_code: int, folder: str, limits: Limits) -> Analysis:
    if exit_code in (-signal.SIGXCPU, -signal.SIGKILL):
        # SIGKILL here is the kernel's, at the hard CPU limit (ours comes only after the
        # deadline, handled by the caller).
        raise UnreadableDocument(TOO_MUCH_CPU)
    answer = None
    path = os.path.join(folder, "answer.json")
    if exit_code == 0 and os.path.exists(path) and os.path.getsize(path) <= MAX_ANSWER:
        with open(path, "rb") as out, contextlib.suppress(ValueError):
            answer = json.load(out)
    if not isinstance(answer, dict):
        log.error("analysis worker failed", exit_code=exit_code)
        raise RuntimeError(f"the analysis worker failed (exit status {exit_code})")
    if "refused" in answer:
        reason = str(answer["refused"])
        if reason.startswith(TOO_LONG.split("(")[0]):
            reason = TOO_LONG.format(limits.timeout)  # the limit as set, not the worker's share
        raise UnreadableDocument(reason)
    fields = answer["analysis"]
    return Analysis(
        format=fields["format"],
        pages=fields["pages"],
        color_pages=tuple(fields["color_pages"]),
        page_sizes=tuple(fields["page_sizes"]),
        analysis_ms=fields["analysis_ms"],
    )


_default: IsolatedAnalyser | None = None


async def analyse(document: bytes, owner: str = "") -> Analysis:
    """Analyse with the service's one `IsolatedAnalyser` (limits from the environment)."""
    global _default
    if _default is None:
        _default = IsolatedAnalyser()
    return await _default.analyse(document, owner)


def load() -> tuple[int, int]:
    """(analyses holding a worker, bytes of documents admitted and not yet analysed) in
    this process: what the service's metrics show (platen.job_capture.metrics)."""
    if _default is None:
        return 0, 0
    return _default.running, _default.queued


# Each process's analyses are made in one folder named after it (`platen-analyses-<pid>-`):
# a job-capture killed mid-analysis leaves a user's document there, and the next process
# to analyse on the host removes the folders of processes that are gone.
SCRATCH_PREFIX = "platen-analyses-"
_scratch: tuple[int, str] | None = None


def scratch_folder() -> str:
    """This process's folder for its analyses (made when first needed), after removing the
    folders that processes of this user left behind when they ended without removing them."""
    global _scratch
    if _scratch is None or _scratch[0] != os.getpid() or not os.path.isdir(_scratch[1]):
        sweep_scratch(tempfile.gettempdir())
        _scratch = (os.getpid(), tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-"))
        atexit.register(_remove_own, *_scratch)
    return _scratch[1]


def _remove_own(pid: int, folder: str) -> None:
    """At a normal exit, this process's folder goes with it (a process forked from this
    one inherits the handler: only the process the folder is named after removes it)."""
    if os.getpid() == pid:
        shutil.rmtree(folder, ignore_errors=True)


def sweep_scratch(folder: str) -> list[str]:
    """Remove the analysis folders in `folder` of this user's processes that have ended;
    returns their names. Another user's, and a live process's, are left alone."""
    removed = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if not entry.name.startswith(SCRATCH_PREFIX) or not entry.is_dir(follow_symlinks=False):
                continue
            pid = entry.name[len(SCRATCH_PREFIX) :].split("-", 1)[0]
            if not pid.isdigit() or entry.stat(follow_symlinks=False).st_uid != os.getuid():
                continue
            try:
                os.kill(int(pid), 0)
                continue  # alive (or its pid taken again: left for a later sweep)
            except ProcessLookupError:
                pass
            except PermissionError:
                continue
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(entry.name)
    return removed
