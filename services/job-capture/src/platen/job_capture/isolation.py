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
import contextlib
import json
import math
import os
import shutil
import signal
import sys
import tempfile
from dataclasses import dataclass

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
MAX_ERROR_OUTPUT = 4096


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
    # What the worker's Python runs (after `-I`); a test may put a stand-in here.
    worker: tuple[str, ...] = ("-m", "platen.job_capture.analysis_worker")

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits.from_environment()
        self._slots = asyncio.Semaphore(self.limits.workers)
        self.queued = 0  # bytes of documents admitted and not yet analysed
        # Per owner with documents admitted: bytes admitted, and the owner's own slots.
        self._owners: dict[str, tuple[int, asyncio.Semaphore]] = {}

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
                return await self._run(document)
        finally:
            self.queued -= size
            left = self._owners[owner][0] - size
            if left:
                self._owners[owner] = (left, slots)
            else:
                del self._owners[owner]

    async def _run(self, document: bytes) -> Analysis:
        limits = self.limits
        tmp = tempfile.mkdtemp(prefix="platen-analysis-")
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-I",
                *self.worker,
                f"--memory-bytes={limits.memory_bytes}",
                f"--cpu-seconds={limits.cpu_seconds}",
                f"--file-bytes={limits.file_bytes}",
                # The worker stops Ghostscript itself a little before the deadline, so a
                # document that is merely slow gets the same reason either way.
                f"--timeout={max(0.1, limits.timeout - 0.5)}",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=scrubbed_environment(tmp),
                cwd=tmp,
                start_new_session=True,  # its own process group: one kill takes Ghostscript too
            )
            try:
                out, err = await asyncio.wait_for(
                    _exchange(process, document), timeout=limits.timeout
                )
            except TimeoutError:
                raise UnreadableDocument(TOO_LONG.format(limits.timeout)) from None
            finally:
                _kill_group(process.pid)
                await process.wait()
            return _answer(process.returncode, out, err, limits)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


async def _exchange(process: asyncio.subprocess.Process, document: bytes) -> tuple[bytes, bytes]:
    """Send the document, read the answer (bounded) and wait for the worker to end."""
    assert process.stdin and process.stdout and process.stderr
    try:
        process.stdin.write(document)
        await process.stdin.drain()
        process.stdin.close()
    except (BrokenPipeError, ConnectionResetError):
        pass  # it died early; its exit status says why
    out, err = await asyncio.gather(
        process.stdout.read(MAX_ANSWER), process.stderr.read(MAX_ERROR_OUTPUT)
    )
    await process.wait()
    return out, err


def _kill_group(pid: int) -> None:
    """Kill the worker and whatever it started (Ghostscript): the group outlives neither
    a deadline nor a worker that has answered."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def _answer(returncode: int | None, out: bytes, err: bytes, limits: Limits) -> Analysis:
    if returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        # SIGKILL here is the kernel's, at the hard CPU limit (ours comes only after the
        # deadline, handled by the caller).
        raise UnreadableDocument(TOO_MUCH_CPU)
    try:
        answer = json.loads(out)
    except ValueError:
        answer = None
    if returncode != 0 or not isinstance(answer, dict):
        log.error(
            "analysis worker failed",
            returncode=returncode,
            error=err.decode("utf-8", "replace")[-1000:],
        )
        raise RuntimeError(f"the analysis worker failed (exit status {returncode})")
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
