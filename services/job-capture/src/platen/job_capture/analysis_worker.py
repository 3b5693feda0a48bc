"""`python -I -m platen.job_capture.analysis_worker`: the analysis workers' parent.

One long-lived process per job-capture process (`isolation.IsolatedAnalyser` starts it
with a scrubbed environment). It imports the parsers once and never reads a document
itself: for each request it forks a child, which limits itself, reads the document and
writes what it is, so a document costs a fork, not a Python start, and every child is
new: one that misbehaved is gone with its document. It loads Ghostscript once too
(`resident_ghostscript`), so a child runs the document in an interpreter that is ready
instead of starting `gs` (unless started with --no-resident, or libgs is missing), and
keeps a child forked ahead of the next document (`spare`; not with --no-spare).

The protocol, one JSON object per line. First, on stdout, how Ghostscript runs:
{"ghostscript": "libgs"} or {"ghostscript": "gs", "why": "..."}. On stdin, a request:
    {"id": 7, "dir": "/tmp/platen-analysis-x", "memory_bytes": ..., "cpu_seconds": ...,
     "file_bytes": ..., "timeout": 9.5}
`dir` is the document's own folder (made and removed by the service) holding `document`;
the child makes it its working directory and TMPDIR (Ghostscript's gs_* files go there)
and writes `answer.json` in it: {"analysis": {...}} or {"refused": "reason"}. On stdout:
{"id": 7, "pid": 1234} once the child runs (the service kills its process group at the
deadline), then {"id": 7, "exit": 0, "peak_kb": ...} when it has ended (a negative exit:
the signal; peak_kb: the largest child's peak memory so far).
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import json
import os
import resource
import selectors
import signal
import sys
import tempfile
from collections.abc import Iterator

from platen.job_capture.analysis import MAX_DPI, Renderer, UnreadableDocument, analyse
from platen.job_capture.resident_ghostscript import ResidentGhostscript

# Said when the analysis runs out of its address space inside Python (pikepdf, the raster
# reader). Ghostscript out of memory fails as a document that cannot be rendered.
TOO_MUCH_MEMORY = "the document needs too much memory to analyse (the limit is {} MB)"
# A request is a line of under 200 bytes; far under a pipe's buffer (64 KiB), so that the
# parent's one write to a spare never blocks.
MAX_REQUEST = 4096


def frozen_fork(freeze: bool) -> int:
    """os.fork, with the parent's objects first moved out of the garbage collector's reach
    (`gc.freeze`) if `freeze`: a Python collection in the child (pikepdf and the analysis
    allocate enough to start some) would otherwise visit, and so write to and copy, every
    object the parent holds (about a tenth of a short document's CPU)."""
    if freeze:
        gc.freeze()
    return os.fork()


def set_limits(memory_bytes: int, cpu_seconds: int, file_bytes: int) -> None:
    """Soft and hard limits alike: the document cannot raise them again (Ghostscript's
    PostScript has no way to, but a bug in a parser should not have one either)."""
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a crash leaves no copy of the document


def detach(inherited: tuple[int, ...]) -> None:
    """In a forked child, before any document: its own process group (one kill takes
    Ghostscript too; the parent sets it as well, so it is in place before the service
    hears the pid, whichever runs first), none of the parent's signal handling, and not
    the control channel: nothing the child (or Ghostscript) does reaches it."""
    os.setpgid(0, 0)
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    for fd in inherited:  # the parent's own (its wake-up pipe, its selector)
        os.close(fd)


def run(request: dict, renderer: Renderer | None) -> None:
    """In a detached child: analyse the document in `request["dir"]`; never returns."""
    try:
        folder = request["dir"]
        os.chdir(folder)
        os.environ.update(TMPDIR=folder)  # for Ghostscript, which the child starts
        tempfile.tempdir = folder
        set_limits(request["memory_bytes"], request["cpu_seconds"], request["file_bytes"])
        with open("document", "rb") as source:
            document = source.read()
        try:
            result = analyse(document, timeout=request["timeout"], renderer=renderer)
            answer: dict[str, object] = {"analysis": dataclasses.asdict(result)}
        except UnreadableDocument as exc:
            answer = {"refused": str(exc)}
        except MemoryError:
            answer = {"refused": TOO_MUCH_MEMORY.format(request["memory_bytes"] // 2**20)}
        with open("answer.part", "w") as out:
            json.dump(answer, out)
        os.rename("answer.part", "answer.json")
        os._exit(0)
    except BaseException:
        os._exit(70)  # the service reports a crash (no answer.json)


def child(request: dict, renderer: Renderer | None, inherited: tuple[int, ...]) -> None:
    """In a child forked for `request`: detach, analyse; never returns."""
    try:
        detach(inherited)
    except BaseException:
        os._exit(70)
    run(request, renderer)


def spare(requests: int, renderer: Renderer | None, inherited: tuple[int, ...]) -> None:
    """In a spare child, forked before its document came: detach and open Ghostscript's
    device (trusted work, the document's own first step), then wait on `requests` (a
    pipe only the parent writes) for one request and analyse it. At end of file (the
    parent retired it or is gone) it ends without having read a document. Never returns."""
    try:
        detach(inherited)
        if isinstance(renderer, ResidentGhostscript):
            renderer.prepare(MAX_DPI)
        line = b""
        while not line.endswith(b"\n") and len(line) <= MAX_REQUEST:
            chunk = os.read(requests, 65536)
            if not chunk:
                break
            line += chunk
        os.close(requests)
        if not line.endswith(b"\n"):
            os._exit(0)
        request = json.loads(line)
    except BaseException:
        os._exit(70)
    run(request, renderer)


@dataclasses.dataclass(frozen=True)
class Spare:
    pid: int
    requests: int  # the pipe's end the parent writes the request to


def fork_spare(renderer: Renderer | None, inherited: tuple[int, ...], freeze: bool) -> Spare | None:
    """A child forked ahead of its document; None if the fork failed (the next document
    then forks its own child, as without a spare). `freeze`: see `frozen_fork`."""
    try:
        read_end, write_end = os.pipe()
    except OSError:
        return None
    try:
        pid = frozen_fork(freeze)
    except OSError:
        os.close(read_end)
        os.close(write_end)
        return None
    if pid == 0:
        os.close(write_end)
        spare(read_end, renderer, inherited)
    os.close(read_end)
    with contextlib.suppress(OSError):  # the child may have done it, or ended
        os.setpgid(pid, pid)
    return Spare(pid, write_end)


def hand_over(waiting: Spare, request: dict) -> bool:
    """Give `request` to the spare; False if it is gone (then it is not used)."""
    try:
        data = (json.dumps(request) + "\n").encode()
        # One write, under the pipe's buffer: never blocks on a spare that does not read.
        return len(data) <= MAX_REQUEST and os.write(waiting.requests, data) == len(data)
    except OSError:  # BrokenPipeError: it died while waiting
        return False
    finally:
        os.close(waiting.requests)


def serve(
    resident: bool = True,
    spares: bool = True,
    fewer_faults: bool = True,
    pdf_context_ahead: bool = True,
) -> None:
    """Run each request in a child of its own, and report its pid and, once reaped, its
    exit. With `spares`, one child is forked ahead and waits for the next request, so
    the fork and the device's opening are not on a document's path. The next spare is
    forked when a document's child has ended and its exit is said (at start too): then
    it is made while the service finishes that job and the next one comes, not while a
    document is analysed on the same cores. A spare that dies while waiting is replaced
    the same way, never at once (one that cannot start is not forked in a loop)."""
    running: dict[int, int] = {}  # pid -> request id
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    control = sys.stdin.buffer.raw
    out = sys.stdout

    def say(message: dict) -> None:
        out.write(json.dumps(message) + "\n")
        out.flush()

    renderer, how = (
        ResidentGhostscript.load(fewer_faults, pdf_context_ahead)
        if resident
        else (None, "--no-resident")
    )
    freeze = fewer_faults
    say({"ghostscript": "libgs"} if renderer else {"ghostscript": "gs", "why": how})
    pending = b""
    waiting: Spare | None = None
    with selectors.DefaultSelector() as selector:
        inherited = (wake_read, wake_write, selector.fileno())
        selector.register(control, selectors.EVENT_READ, "control")
        selector.register(wake_read, selectors.EVENT_READ, "child")
        if spares:
            waiting = fork_spare(renderer, inherited, freeze)
        while True:
            for key, _ in selector.select():
                if key.data == "child":
                    os.read(wake_read, 4096)
                    for pid, status in reaped():
                        if waiting is not None and pid == waiting.pid:
                            os.close(waiting.requests)  # died while waiting
                            waiting = None
                        elif pid in running:
                            exit_code = os.waitstatus_to_exitcode(status)
                            # The largest child so far (grandchildren included), in KiB.
                            peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
                            say({"id": running.pop(pid), "exit": exit_code, "peak_kb": peak})
                            if spares and waiting is None:
                                waiting = fork_spare(renderer, inherited, freeze)
                    continue
                chunk = os.read(control.fileno(), 65536)
                if not chunk:  # the service is gone: so are we (children die at its kill)
                    return  # and the spare, at the end of its pipe
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    request = json.loads(line)
                    pid = 0
                    if waiting is not None:
                        if hand_over(waiting, request):
                            pid = waiting.pid
                        waiting = None
                    if not pid:
                        pid = frozen_fork(freeze)
                        if pid == 0:
                            child(request, renderer, inherited)
                        with contextlib.suppress(OSError):  # the child may have, or ended
                            os.setpgid(pid, pid)
                    running[pid] = request["id"]
                    say({"id": request["id"], "pid": pid})


def reaped() -> Iterator[tuple[int, int]]:
    """Every child that has ended, with its wait status, without waiting."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        yield pid, status


if __name__ == "__main__":
    serve(
        resident="--no-resident" not in sys.argv[1:],
        spares="--no-spare" not in sys.argv[1:],
        fewer_faults="--no-fewer-faults" not in sys.argv[1:],
        pdf_context_ahead="--no-pdf-context-ahead" not in sys.argv[1:],
    )
