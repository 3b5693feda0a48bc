"""A private folder for one job's document while the backend prepares it.

What `tempfile.TemporaryDirectory` does, for the one use the backend has: importing
`tempfile` brings `shutil`, `random`, `bz2`, `lzma` and `weakref` into the start of every
job (bench/README.md, cups_latency.py). Standard library only.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator


@contextlib.contextmanager
def scratch_folder(prefix: str = "platen-") -> Iterator[str]:
    """A new folder only this user can enter, in TMPDIR (which cupsd sets for its
    backends), removed with what is in it afterwards."""
    parent = os.environ.get("TMPDIR") or "/tmp"
    # A random name, and mkdir fails on one that exists: never a folder someone else
    # put there for the backend to write into.
    path = os.path.join(parent, prefix + os.urandom(8).hex())
    os.mkdir(path, 0o700)
    try:
        yield path
    finally:
        remove(path)


def remove(path: str) -> None:
    """Remove the folder and the files in it (the backend makes no folders in it)."""
    try:
        for name in os.listdir(path):
            os.unlink(os.path.join(path, name))
        os.rmdir(path)
    except OSError:
        import shutil  # something unexpected in it: whatever it is, it goes

        shutil.rmtree(path, ignore_errors=True)
