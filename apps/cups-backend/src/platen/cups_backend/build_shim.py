"""Compile the shim (`shim.c`) into the program cupsd starts per job.

    python -m platen.cups_backend.build_shim /usr/lib/cups/backend/platen

The Python that runs this is the one the shim starts the full backend with, when no warm
backend takes the job, and the folder this package is in is that backend's PYTHONPATH: both
are compiled in, so the shim reads nothing but its configuration at a job's start. The
program is written mode 0700 (cupsd runs it as root, as it must be to read the backend's
configuration) and replaced whole: a job that starts meanwhile runs the old one or the new.
Needs a C compiler (`cc`, or CC); without one, the wrapper of `shim.py` does the same job,
about 11 ms slower a job (docs/cups.md).
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

SOURCE = Path(__file__).with_name("shim.c")


class BuildError(Exception):
    """The shim could not be compiled; the message says why."""


def c_string(text: str) -> str:
    """`text` as a C string literal, for a -D on the compiler's command line."""
    if any(ch in text for ch in '"\\\n') or not text.isprintable():
        raise BuildError(f"a path the shim cannot name: {text!r}")
    return f'"{text}"'


def backend_path() -> Path:
    """The folder that holds `platen/cups_backend`: the full backend's PYTHONPATH."""
    return Path(__file__).resolve().parents[2]


def build(output: Path, python: str = sys.executable, compiler: str | None = None) -> Path:
    """Compile the shim to `output` (mode 0700), for the full backend under `python`."""
    cc = shlex.split(compiler or os.environ.get("CC") or "cc")
    output = Path(output)
    if not output.parent.is_dir():
        raise BuildError(f"no folder {output.parent} to put the shim in")
    fd, partial = tempfile.mkstemp(prefix=".platen-shim-", dir=output.parent)
    os.close(fd)
    try:
        command = [
            *cc,
            "-O2",
            "-Wall",
            "-Wextra",
            "-Werror",
            f"-DPLATEN_PYTHON={c_string(python)}",
            f"-DPLATEN_PYTHONPATH={c_string(str(backend_path()))}",
            "-o",
            partial,
            str(SOURCE),
        ]
        try:
            done = subprocess.run(command, capture_output=True, text=True)
        except FileNotFoundError:
            raise BuildError(f"no C compiler ({cc[0]}): install one (gcc) or use shim.py") from None
        if done.returncode != 0:
            raise BuildError(f"{shlex.join(command)} failed:\n{done.stderr}")
        os.chmod(partial, 0o700)
        os.replace(partial, output)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return output


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", type=Path, help="where the program goes")
    args = parser.parse_args()
    try:
        build(args.output)
    except BuildError as exc:
        sys.exit(f"platen: {exc}")


if __name__ == "__main__":
    run()
