"""What a PostScript document sent to the API (`capture.submit`, source `api`) costs
job-capture: refused now, analysed before, and distilled to PDF (the alternative that was
not taken, see docs/security.md "PostScript from the API").

Each document goes through `handlers.analyse_submission` as the service runs it (the
isolated analysis worker, libgs resident in it), three ways alternated run by run in one
process so that all see the same load:
- refused: as now (`domain.refuse_format` answers before anything runs the document);
- analysed: as main did (the refusal turned off: the document analysed as PostScript);
- distilled: Ghostscript's pdfwrite (`gs` started per document, -dSAFER) to PDF, then
  that PDF through the same path: what distilling in job-capture would have cost at the
  least (without the limits and worker it would need too).
Figures: median wall time per document, with the load average before and after.

    .venv/bin/python bench/api_postscript.py [--runs 7]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from analysis_speed import mixed_pages  # bench/ is the script's folder

from platen.events.jobs import SubmitJob
from platen.job_capture import handlers
from platen.job_capture.analysis import Analysis
from platen.testing.documents import Page, make_postscript

SPOT_BY_VALUE = b"""%!PS
mark [/Separation /Black /DeviceRGB {pop 1 0 0}] //setcolorspace cleartomark 1 setcolor
100 100 200 200 rectfill showpage
"""


def submission(document: bytes) -> SubmitJob:
    return SubmitJob(
        job_id=uuid.uuid4(),
        user="bench",
        printer="lab",
        document_name="bench.ps",
        document=base64.b64encode(document),
        source="api",
    )


DISTILL = ["gs", "-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-sDEVICE=pdfwrite"]


def distilled(document: bytes) -> bytes:
    with tempfile.TemporaryDirectory(prefix="platen-bench-") as tmp:
        source, out = Path(tmp, "in.ps"), Path(tmp, "out.pdf")
        source.write_bytes(document)
        subprocess.run(
            [*DISTILL, f"-sOutputFile={out}", str(source)],
            check=True,
            stdin=subprocess.DEVNULL,
        )
        return out.read_bytes()


async def once(document: bytes, way: str) -> tuple[float, str]:
    refuse = handlers.refuse_format
    if way != "refused":
        handlers.refuse_format = lambda fmt, source: None  # as main did
    try:
        start = time.perf_counter()
        if way == "distilled":
            document = distilled(document)
        outcome = await handlers.analyse_submission(submission(document))
        wall = time.perf_counter() - start
    finally:
        handlers.refuse_format = refuse
    if isinstance(outcome, Analysis):
        return wall, f"{outcome.format}, colour pages {len(outcome.color_pages)}"
    return wall, f"refused: {outcome[:40]}"


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=7)
    args = p.parse_args()
    documents = {
        "PS, 1 page, colour shape": make_postscript([Page(marks=("color-shape",))]),
        "PS, 100 pages, mixed": make_postscript(mixed_pages()),
        "PS, 1 page, //setcolorspace": SPOT_BY_VALUE,
    }
    ways = ("refused", "analysed", "distilled")
    await once(documents["PS, 1 page, colour shape"], "analysed")  # start the worker
    print(f"load average before: {os.getloadavg()}, {os.cpu_count()} CPUs, runs {args.runs}")
    for name, document in documents.items():
        walls: dict[str, list[float]] = {way: [] for way in ways}
        answers: dict[str, set[str]] = {way: set() for way in ways}
        for _ in range(args.runs):
            for way in ways:
                wall, answer = await once(document, way)
                walls[way].append(wall)
                answers[way].add(answer)
        for way in ways:
            print(
                f"{name:28} {way:9} wall {statistics.median(walls[way]) * 1000:8.2f} ms"
                f"  {' | '.join(sorted(answers[way]))}"
            )
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    asyncio.run(main())
