"""Document analysis as job-capture runs it: fixed cost per document, and pages per second.

Five ways of running Ghostscript through the isolated analysis (`isolation.IsolatedAnalyser`:
a worker parent that forks a child per document, with its limits), in the same run, on
the same documents, taking turns run by run so that the machine's load falls on all
alike:

- `gs per document`: the child starts the `gs` program for its document;
- `libgs, fork per doc` (before, 0deb87d): the parent loads Ghostscript once, the child,
  forked when the document comes, runs it in the interpreter it inherits
  (`resident_ghostscript`);
- `+ fewer faults`: the same, with the heap the children allocate anew asked for in
  transparent huge pages, Ghostscript's garbage collected every 64 MB instead of in
  every document, and the parent's Python objects frozen before each fork
  (`resident_ghostscript.HUGE_HEAP_BYTES`, `GC_THRESHOLD_BYTES`,
  `analysis_worker.frozen_fork`);
- `+ spare child`: that, and the child was forked ahead and opened the device
  while it waited (`analysis_worker.spare`); a new spare is forked after it;
- `+ PDF context ahead` (now): that, and the PDF interpreter's context was made in the
  parent before any document, for the child to take
  (`resident_ghostscript.PDF_CONTEXT_AHEAD`).

The whole process tree is pinned to one core (`--cpu`, default 0), so "pages/s" is on one
core, and a spare's fork and preparation share that core with the document before it: the
spare moves work off a document's path, it does not remove it, so on one core its wall
times show little; CPU figures count the spare's work too. CPU is every process's: this
one (the service side), the worker parent, the children and any `gs` (read from /proc: the
parent's own and its reaped children's time, in clock ticks, hence many documents per
figure).

- fixed cost per document: T(1 page) - (T(10 pages) - T(1 page)) / 9, for a page of the
  text corpus (60 lines, one blue, in Helvetica, which is not embedded: Ghostscript loads
  a substitute for each document) and for a page of shapes and an image (no font), in
  CPU and in wall time;
- pages/s: the 100-page mixed and text corpora of `analysis_speed.py` (and its PostScript),
  pages / CPU seconds and pages / wall seconds, one document at a time.
- latency with a free core (`--latency`, not pinned): wall time of a 1-page text document
  sent after a pause, so the spare is ready, as at a print server's usual load.

    .venv/bin/python bench/analysis.py [--runs 10] [--cpu 0] [--latency] [--ways N]

(`--ways 3`: only the last three ways, the newest against the two before it.)
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import statistics
import sys
import time
from pathlib import Path

import pikepdf

sys.path.insert(0, str(Path(__file__).parent))

from analysis_speed import PAGES, mixed_pages, text_pdf

from platen.job_capture.isolation import IsolatedAnalyser, Limits
from platen.testing.documents import Page, make_pdf_pages, make_postscript

TICK = os.sysconf("SC_CLK_TCK")
WAYS = {
    "gs per document": Limits(resident_ghostscript=False, spare_child=False),
    "libgs, fork per doc": Limits(spare_child=False, fewer_faults=False, pdf_context_ahead=False),
    "+ fewer faults": Limits(spare_child=False, pdf_context_ahead=False),
    "+ spare child": Limits(pdf_context_ahead=False),
    "+ PDF context ahead": Limits(),
}


def tree_usage(parent: int) -> tuple[float, int]:
    """CPU seconds of this process, the worker parent and its reaped children; and the
    minor page faults of the worker parent and its reaped children."""
    with open(f"/proc/{parent}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    # minflt, cminflt, ..., utime, stime, cutime, cstime: fields 10, 11 and 14 to 17 of
    # proc(5), 8, 9 and 12 to 15 after the name.
    worker = sum(int(value) for value in fields[11:15]) / TICK
    return time.process_time() + worker, int(fields[7]) + int(fields[8])


async def measure(
    analysers: dict[str, IsolatedAnalyser], document: bytes, runs: int
) -> dict[str, tuple[float, float, float]]:
    """Each way's mean CPU seconds, median wall seconds and mean page faults of one
    analysis, over `runs` (after one to warm up); the ways take turns run by run, in an
    order that rotates, so that the machine's changing load falls on all alike."""
    parents = {}
    for name, analyser in analysers.items():
        await analyser.analyse(document)
        assert analyser._server is not None
        parents[name] = analyser._server.process.pid
    seen: dict[str, list[tuple[float, float, int]]] = {name: [] for name in analysers}
    names = list(analysers)
    for run in range(runs):
        for name in names[run % len(names) :] + names[: run % len(names)]:
            (cpu0, faults0), wall0 = tree_usage(parents[name]), time.perf_counter()
            await analysers[name].analyse(document)
            # The child is reaped before its answer is read, so its time is counted.
            wall = time.perf_counter() - wall0
            cpu, faults = tree_usage(parents[name])
            seen[name].append((cpu - cpu0, wall, faults - faults0))
    return {
        name: (
            statistics.mean(cpu for cpu, _, _ in figures),
            statistics.median(wall for _, wall, _ in figures),
            statistics.mean(faults for _, _, faults in figures),
        )
        for name, figures in seen.items()
    }


def text_pages(text: bytes, count: int) -> bytes:
    """The text corpus's pages from its first with a blue line (every fifth has one)."""
    with pikepdf.open(io.BytesIO(text)) as pdf, pikepdf.new() as out:
        for page in list(pdf.pages)[5 : 5 + count]:
            out.pages.append(page)
        buffer = io.BytesIO()
        out.save(buffer)
        return buffer.getvalue()


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--cpu", type=int, default=0)
    p.add_argument("--latency", action="store_true", help="only the latency with free cores")
    p.add_argument("--ways", type=int, default=len(WAYS), help="only the last N ways")
    args = p.parse_args()
    ways = dict(list(WAYS.items())[-args.ways :])
    if args.latency:
        await latency(args.runs, ways)
        return
    os.sched_setaffinity(0, {args.cpu})  # the worker parent and every child inherit it
    text = text_pdf()
    one_text, ten_text = text_pages(text, 1), text_pages(text, 10)
    pages = mixed_pages()
    corpora = {
        "mixed PDF": make_pdf_pages(pages),
        "text PDF": text,
        "PostScript": make_postscript(pages),
    }
    analysers = {name: IsolatedAnalyser(limits) for name, limits in ways.items()}
    print(
        f"one core (cpu {args.cpu}), {os.cpu_count()} on the machine, load average"
        f" {os.getloadavg()[0]:.1f} at the start; {args.runs} runs a figure (CPU: mean,"
        " wall: median), the ways taking turns run by run on each document"
    )
    shapes = [Page(marks=("black-shape", "color-shape", "gray-shape", "gray-image"))]
    kinds = {
        "text page": (one_text, ten_text),
        "shapes page": (make_pdf_pages(shapes), make_pdf_pages(shapes * 10)),
    }
    for kind, (one, ten) in kinds.items():
        print(f"\nfixed cost per document, a {kind}: T1 - (T10 - T1) / 9 (CPU / wall)")
        print(
            f"{'':<19} {'1 page':>17} {'10 pages':>17} {'per page':>17} {'fixed':>17}"
            f" {'faults, 1 page':>15}"
        )
        ones = await measure(analysers, one, args.runs)
        tens = await measure(analysers, ten, args.runs)
        for name in analysers:
            (c1, w1, f1), (c10, w10, _) = ones[name], tens[name]
            per_cpu, per_wall = (c10 - c1) / 9, (w10 - w1) / 9
            cells = [
                f"{c * 1000:5.1f} / {w * 1000:5.1f} ms"
                for c, w in (
                    (c1, w1),
                    (c10, w10),
                    (per_cpu, per_wall),
                    (c1 - per_cpu, w1 - per_wall),
                )
            ]
            print(f"{name:<19} " + " ".join(f"{cell:>17}" for cell in cells) + f" {f1:15.0f}")
    print(
        f"\npages/s, {PAGES}-page documents, one at a time (pages per CPU second / per wall second)"
    )
    for corpus, document in corpora.items():
        figures = await measure(analysers, document, max(3, args.runs // 3))
        row = [
            f"{name}: {PAGES / cpu:4.0f} / {PAGES / wall:4.0f}"
            for name, (cpu, wall, _) in figures.items()
        ]
        print(f"{corpus:<11} " + "    ".join(row))
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")
    for analyser in analysers.values():
        if analyser._server is not None:
            analyser._server.process.kill()


async def latency(runs: int, ways: dict[str, Limits]) -> None:
    """Wall time of a 1-page text document sent after a pause (the spare is ready), not
    pinned: what a job waits for at a print server's usual load, with a core free."""
    one = text_pages(text_pdf(), 1)
    analysers = {name: IsolatedAnalyser(limits) for name, limits in ways.items()}
    walls: dict[str, list[float]] = {name: [] for name in analysers}
    for analyser in analysers.values():
        await analyser.analyse(one)
    print(
        f"not pinned, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the"
        f" start; a 1-page text PDF {runs} times a way, 0.2 s apart, the ways in turn"
    )
    for _ in range(runs):
        for name, analyser in analysers.items():
            await asyncio.sleep(0.2)
            started = time.perf_counter()
            await analyser.analyse(one)
            walls[name].append(time.perf_counter() - started)
    for name, times in walls.items():
        times.sort()
        p90 = times[min(len(times) - 1, int(len(times) * 0.9))]
        print(
            f"{name:<19} median {statistics.median(times) * 1000:6.1f} ms,"
            f" p90 {p90 * 1000:6.1f} ms, min {times[0] * 1000:6.1f} ms"
        )
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    for analyser in analysers.values():
        if analyser._server is not None:
            analyser._server.process.kill()


if __name__ == "__main__":
    asyncio.run(main())
