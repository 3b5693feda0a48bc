"""What analysing Separation and DeviceN spaces in their alternate costs a document.

`analyse()` (Ghostscript started per document, as the program path runs it) with the
defence (`separations`: PDF colorants renamed with pikepdf, PostScript's colour-space
operators replaced in systemdict, and a second rendering for a document with a process
colorant in a spot colour) and without it (what main did: `use_alternates` and
`alternates_for_postscript` doing nothing), alternated run by run in one process so that
both see the same load. Every PDF pays the walk over its objects and content streams;
every PostScript document the longer set-up. Figures: median wall time, median CPU time
of this process (pikepdf's walk) and of Ghostscript (children's user + system), with the
load average before and after. Then, for each PDF, the CPU time of `use_alternates` with
and without its search for the streams the PDF names as content (`_named_as_content`).

    .venv/bin/python bench/separations.py [--runs 11]
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import statistics
import time
from collections.abc import Callable

import pikepdf
from analysis_speed import mixed_pages, text_pdf  # bench/ is the script's folder

from platen.job_capture import analysis, separations
from platen.testing.documents import Page, make_pdf_pages, make_postscript

SPOT_POSTSCRIPT = b"""%!PS
[/Separation /Black /DeviceRGB {pop 1 0 0}] setcolorspace 1 setcolor
100 100 200 200 rectfill showpage
"""


def without_defence() -> Callable[[], None]:
    """Make `analysis` run as main did; returns what undoes it."""
    rename, postscript = analysis.use_alternates, analysis.alternates_for_postscript
    analysis.use_alternates = lambda pdf: False
    analysis.alternates_for_postscript = lambda marker: ()

    def undo() -> None:
        analysis.use_alternates, analysis.alternates_for_postscript = rename, postscript

    return undo


def timed(document: bytes) -> tuple[float, float, float, tuple[int, ...]]:
    children, own = resource.getrusage(resource.RUSAGE_CHILDREN), resource.getrusage(0)
    start = time.perf_counter()
    result = analysis.analyse(document)
    wall = time.perf_counter() - start
    children_after, own_after = resource.getrusage(resource.RUSAGE_CHILDREN), resource.getrusage(0)
    gs = sum(getattr(children_after, f) - getattr(children, f) for f in ("ru_utime", "ru_stime"))
    python = sum(getattr(own_after, f) - getattr(own, f) for f in ("ru_utime", "ru_stime"))
    return wall, python, gs, result.color_pages


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=11)
    args = p.parse_args()
    documents = {
        "PDF, 1 page, colour shape": make_pdf_pages([Page(marks=("color-shape",))]),
        "PDF, 100 pages, mixed": make_pdf_pages(mixed_pages()),
        "PDF, 100 pages of text": text_pdf(),
        "PS, 1 page, colour shape": make_postscript([Page(marks=("color-shape",))]),
        "PS, 100 pages, mixed": make_postscript(mixed_pages()),
        "PS, 1 page, spot /Black": SPOT_POSTSCRIPT,
    }
    print(f"load average before: {os.getloadavg()}, {os.cpu_count()} CPUs, runs {args.runs}")
    for name, document in documents.items():
        figures: dict[str, list[tuple[float, float, float]]] = {"with": [], "without": []}
        answers: dict[str, set[tuple[int, ...]]] = {"with": set(), "without": set()}
        for _ in range(args.runs):
            for variant in ("with", "without"):
                undo = without_defence() if variant == "without" else (lambda: None)
                try:
                    wall, python, gs, colour = timed(document)
                finally:
                    undo()
                figures[variant].append((wall, python, gs))
                answers[variant].add(colour)
        for variant, runs in figures.items():
            wall, python, gs = (statistics.median(run[i] for run in runs) * 1000 for i in range(3))
            print(
                f"{name:27} {variant:8} defence: wall {wall:6.0f} ms  own CPU {python:5.0f} ms"
                f"  gs CPU {gs:6.0f} ms  colour pages {len(next(iter(answers[variant])))}"
            )
    content_walk(documents, args.runs)
    print(f"load average after: {os.getloadavg()}")


def content_walk(documents: dict[str, bytes], runs: int) -> None:
    """What finding the streams a PDF names as content costs (`_named_as_content`: DCT
    content decoded and searched, JPX content refused): `use_alternates` alone, CPU time,
    with it and with it answering nothing, alternated."""
    real = separations._named_as_content
    for name, document in documents.items():
        if not name.startswith("PDF"):
            continue
        cpu: dict[str, list[float]] = {"with": [], "without": []}
        for _ in range(runs):
            for variant, walk in (("with", real), ("without", lambda pdf: set())):
                separations._named_as_content = walk
                try:
                    with pikepdf.open(io.BytesIO(document)) as pdf:
                        start = time.process_time()
                        separations.use_alternates(pdf)
                        cpu[variant].append(time.process_time() - start)
                finally:
                    separations._named_as_content = real
        print(
            f"{name:27} use_alternates CPU with / without the content walk:"
            f" {statistics.median(cpu['with']) * 1000:5.1f} /"
            f" {statistics.median(cpu['without']) * 1000:5.1f} ms"
        )


if __name__ == "__main__":
    main()
