"""What making PostScript's ink controls inert costs a document's analysis.

`analyse()` on PostScript (Ghostscript started per document, as the program path runs
it), with the defence (`ghostscript_setup` replacing the ink-control operators, and the
colour-space operators of `separations`, in a writable systemdict, then locking it) and
without it (the setup before either), alternated run by run in one process so that both
see the same load. Documents: one A4 page with a
colour shape (where Ghostscript's start-up dominates) and the 100-page mixed document of
bench/analysis_speed.py. Figures: median wall time and median CPU time of Ghostscript
(children's user + system), with the load average before and after.

    .venv/bin/python bench/postscript_ink_controls.py [--runs 11]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time
from collections.abc import Callable

from analysis_speed import mixed_pages  # bench/ is the script's folder

from platen.job_capture import analysis
from platen.testing.documents import Page, make_postscript


def without_defence() -> Callable[[], None]:
    """Make `analysis` run as before the defence; returns what undoes it."""
    setup, writable = analysis.ghostscript_setup, analysis.WRITABLE_SYSTEMDICT

    def old_setup(hook: bool, renamed_marker: str | None = None) -> str:
        text = analysis.NEUTRALS_TO_BLACK
        if hook:  # one statement a line, as `_ghostscript` passes them to `gs -c`
            page_hook = " ".join(analysis.POSTSCRIPT_PAGE_HOOK.split())
            text += "\n" + page_hook.replace("MARKER", analysis.PAGE_MARKER).replace(
                "LIMIT", str(analysis.MAX_PAGES)
            )
        return text

    analysis.ghostscript_setup = old_setup
    analysis.WRITABLE_SYSTEMDICT = "-dSAFER"  # already given: changes nothing

    def undo() -> None:
        analysis.ghostscript_setup, analysis.WRITABLE_SYSTEMDICT = setup, writable

    return undo


def timed(document: bytes) -> tuple[float, float, tuple[int, ...]]:
    before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    result = analysis.analyse(document)
    wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, result.color_pages


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=11)
    args = p.parse_args()
    documents = {
        "1 page, colour shape": make_postscript([Page(marks=("color-shape",))]),
        "100 pages, mixed": make_postscript(mixed_pages()),
    }
    print(f"load average before: {os.getloadavg()}, {os.cpu_count()} CPUs, runs {args.runs}")
    for name, document in documents.items():
        figures: dict[str, list[tuple[float, float]]] = {"with": [], "without": []}
        answers = set()
        for _ in range(args.runs):
            for variant in ("with", "without"):
                undo = without_defence() if variant == "without" else (lambda: None)
                try:
                    wall, cpu, colour = timed(document)
                finally:
                    undo()
                figures[variant].append((wall, cpu))
                answers.add(colour)
        assert len(answers) == 1, "the defence changed an answer"
        for variant, runs in figures.items():
            wall = statistics.median(w for w, _ in runs) * 1000
            cpu = statistics.median(c for _, c in runs) * 1000
            print(f"{name:22} {variant:8} defence: wall {wall:7.0f} ms  gs CPU {cpu:7.0f} ms")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
