"""`python -I -m platen.job_capture.analysis_worker`: analyse one document, in a process
of its own, and say what it is.

The job-capture service starts this (`isolation.IsolatedAnalyser`) with a scrubbed
environment, a temporary folder of its own as working directory and TMPDIR, and the
limits as arguments. The limits are set here, first, before the document is read or any
parser imported, and Ghostscript, started from here, inherits them. The document comes on
stdin; one line of JSON goes to stdout: {"analysis": {...}} or {"refused": "reason"}.
Anything else (no line, a signal) is the parent's to explain.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import sys

# Said when the analysis runs out of its address space inside Python (pikepdf, the raster
# reader). Ghostscript out of memory fails as a document that cannot be rendered.
TOO_MUCH_MEMORY = "the document needs too much memory to analyse (the limit is {} MB)"


def set_limits(memory_bytes: int, cpu_seconds: int, file_bytes: int) -> None:
    """Soft and hard limits alike: the document cannot raise them again (Ghostscript's
    PostScript has no way to, but a bug in a parser should not have one either)."""
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a crash leaves no copy of the document


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="analysis_worker")
    parser.add_argument("--memory-bytes", type=int, required=True)
    parser.add_argument("--cpu-seconds", type=int, required=True)
    parser.add_argument("--file-bytes", type=int, required=True)
    parser.add_argument("--timeout", type=float, required=True)
    args = parser.parse_args(argv)
    set_limits(args.memory_bytes, args.cpu_seconds, args.file_bytes)

    # Imported under the limits: a parser's own start-up counts against them too.
    from platen.job_capture.analysis import UnreadableDocument, analyse

    document = sys.stdin.buffer.read()
    try:
        analysis = analyse(document, timeout=args.timeout)
        answer: dict[str, object] = {"analysis": dataclasses.asdict(analysis)}
    except UnreadableDocument as exc:
        answer = {"refused": str(exc)}
    except MemoryError:
        answer = {"refused": TOO_MUCH_MEMORY.format(args.memory_bytes // 2**20)}
    sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
