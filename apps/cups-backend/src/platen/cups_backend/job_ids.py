"""Platen job ids for CUPS jobs: random, kept on the print server until the job is final.

A Platen job id must be neither predictable nor shared: not derived from the print server
and CUPS's job number (anyone could work it out, and a CUPS job number comes round again
when CUPS's job history is cleared, or on another print server with the same name). So
the backend makes a random uuid4 the first time CUPS runs it for a job, and keeps it in a
small state folder (mode 0700) under a key naming that CUPS job: its queue, its number,
and the uuid and creation time CUPS gave it. CUPS running the backend again for the same
job (the printer was busy, or the job was held and released) finds the id and resumes the
same Platen job; a new job that CUPS gave an old number has another key, so another id.

The id is on disk (written, synced, then linked into place) before the first request that
carries it: a backend killed at any moment, even between making the id and submitting,
resumes with the same id, so a job is never submitted twice under two ids. The entry is
removed once CUPS is done with the job; entries older than MAX_AGE (a job an
administrator deleted while its backend was not running) are removed by later runs.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import time
import uuid

try:
    # CPython's own SHA-256, the same digest as hashlib's: `hashlib` loads OpenSSL first,
    # the largest single import of a job's start (bench/README.md, cups_latency.py).
    from _sha256 import sha256
except ImportError:  # a Python that names it otherwise
    from hashlib import sha256

from platen.cups_backend.options import parse_options

# A CUPS job still unfinished after this long has long passed any Platen deadline.
MAX_AGE = 30 * 24 * 3600.0
# A temporary file left by a backend killed while writing.
TEMP_AGE = 3600.0


def cups_job_key(printer: str, cups_job: str, options: str) -> str:
    """A file name for one CUPS job: CUPS puts the job's uuid and creation time in the
    options it gives a backend, and keeps them for every run of the same job."""
    opts = parse_options(options)
    parts = (printer, cups_job, opts.get("job-uuid", ""), opts.get("time-at-creation", ""))
    return sha256("\0".join(parts).encode()).hexdigest()


class JobIds:
    """The job ids of the CUPS jobs this print server has not finished, one file each.

    Paths are strings (`os.path`): `pathlib` is not imported on the backend's path, whose
    start is paid on every job."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = folder
        # Whether the last `job_id` made the id it returned (no run before this one did).
        self.made = False

    def _path(self, name: str) -> str:
        return os.path.join(self.folder, name)

    def _ready(self) -> None:
        os.makedirs(self.folder, mode=0o700, exist_ok=True)
        # The ids are the print server's to know: other local users cannot list them.
        os.chmod(self.folder, 0o700)

    def _read(self, path: str) -> uuid.UUID | None:
        try:
            with open(path) as file:
                return uuid.UUID(file.read().strip())
        except FileNotFoundError:
            return None

    def job_id(self, key: str) -> uuid.UUID:
        """The id kept for `key`, or a new random one, kept before it is returned."""
        self._ready()
        self.made = False
        path = self._path(key)
        if (kept := self._read(path)) is not None:
            return kept
        made = uuid.uuid4()
        temp = self._path(f".{key}.{os.getpid()}.tmp")
        _write_whole(temp, io.BytesIO(f"{made}\n".encode()))
        try:
            # link, not rename: if another run got there first, its id stands.
            os.link(temp, path)
        except FileExistsError:
            kept = self._read(path)
            if kept is not None:
                return kept
            raise
        finally:
            _unlink(temp)
        self._sync_folder()
        self.made = True
        return made

    def _sync_folder(self) -> None:
        fd = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def document(self, key: str, prepared: str | os.PathLike[str]) -> str:
        """The document this CUPS job prints: `prepared` on the job's first run, kept
        beside its id; on a later run, the copy kept then.

        A later run gets the document from CUPS again and prepares it again, and PostScript
        run a second time need not draw what it drew the first time (it may read the clock,
        or count its runs in a file it can reach): what was analysed and charged is the
        first run's, so that is what every run prints."""
        self._ready()
        path = self._path(f"{key}.document")
        if os.path.exists(path):
            return path
        temp = self._path(f".{key}.document.{os.getpid()}.tmp")
        with open(prepared, "rb") as source:
            _write_whole(temp, source)
        try:
            os.link(temp, path)  # another run's copy, if it got there first, stands
        except FileExistsError:
            pass
        finally:
            _unlink(temp)
        self._sync_folder()
        return path

    def forget(self, key: str) -> None:
        _unlink(self._path(key))
        _unlink(self._path(f"{key}.document"))

    def prune(self, now: float | None = None) -> int:
        """Remove entries older than MAX_AGE (and stale temporary files); how many."""
        now = time.time() if now is None else now
        removed = 0
        try:
            names = os.listdir(self.folder)
        except FileNotFoundError:
            return 0
        for name in names:
            limit = TEMP_AGE if name.endswith(".tmp") else MAX_AGE
            entry = self._path(name)
            try:
                if now - os.stat(entry).st_mtime > limit:
                    os.unlink(entry)
                    removed += 1
            except FileNotFoundError:
                pass
        return removed


def _write_whole(temp: str, source: io.BufferedIOBase) -> None:
    """Write what `source` holds to a new private file `temp` and sync it; on any failure,
    remove the file and raise. Every byte, or an error: a write that a full disk or a
    file-size limit cuts short says so only by the count it returns, and a kept document
    short of its end would be what every run of the job submits and prints."""
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        while chunk := source.read(1 << 20):
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        _unlink(temp)
        raise
    os.close(fd)


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


# The CUPS job this process runs for (a backend runs for one job).
_claimed: list[tuple[JobIds, str]] = []


def claim(state_dir: str, printer: str, cups_job: str, options: str) -> uuid.UUID:
    """The Platen job id for this CUPS job (kept, or new and kept)."""
    store = JobIds(state_dir)
    key = cups_job_key(printer, cups_job, options)
    try:
        store.prune()
        job_id = store.job_id(key)
    except OSError as exc:
        # Without a kept id the job could be captured twice: print nothing.
        print(f"ERROR: Platen: cannot keep job ids in {state_dir}: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    _claimed.append((store, key))
    return job_id


def claimed_new() -> bool:
    """Whether the claimed CUPS job's id was made by this run: no earlier run of the
    backend for it had one, so Platen cannot know the job yet."""
    store, _ = _claimed[-1]
    return store.made


def kept_document(prepared: str | os.PathLike[str]) -> str:
    """The document the claimed CUPS job prints (see `JobIds.document`)."""
    store, key = _claimed[-1]
    try:
        return store.document(key, prepared)
    except OSError as exc:
        print(
            f"ERROR: Platen: cannot keep the job's document in {store.folder}: {exc}",
            file=sys.stderr,
        )
        raise SystemExit(1) from None


def settle(exit_code: int, not_final: set[int]) -> int:
    """Forget this run's job id unless CUPS will run the job again (`exit_code` in
    `not_final`); returns `exit_code`."""
    if exit_code not in not_final:
        for store, key in _claimed:
            store.forget(key)
    return exit_code
