"""What a PDF with a process colorant in a spot colour costs through the analysis workers.

Such a PDF is rendered twice (`separations`: as a CMYK printer prints it, and with its
process colorants renamed, as an RGB printer does). This times whole analyses through
`IsolatedAnalyser` (one worker, resident Ghostscript), one document after another: a
plain 1-page PDF (rendered once) beside two of test_separations' documents that are
rendered twice, and the same for PostScript (whose second run is known to be needed only
after the first). Prints the median wall time of each, with the load average.

`--against DIR` also runs the same measurement in another checkout (its own `.venv`,
made by `make install` there), the two taking turns `--rounds` times, so that a change
and what it replaces are measured in the same minutes.

    .venv/bin/python bench/spot_views.py [--runs 15] [--against /path/to/checkout --rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


async def measure(root: Path, runs: int) -> None:
    sys.path.insert(0, str(root / "services/job-capture"))
    from tests.unit.test_separations import PDF_ATTACKS, PS_ATTACKS

    from platen.job_capture.isolation import IsolatedAnalyser, Limits
    from platen.testing.documents import Page, make_pdf, make_postscript

    analyser = IsolatedAnalyser(Limits(timeout=60, workers=1))
    await analyser.analyse(make_pdf(1))  # the worker started and warm
    documents = {
        "plain 1-page PDF (one view)": make_pdf(1),
        "Separation /Black, coloured alternate": PDF_ATTACKS["fill"](),
        "DeviceN Black and None": PDF_ATTACKS["DeviceN, black and none"](),
        "PostScript, black text (one run)": make_postscript([Page(marks=("black-text",))]),
        "PostScript, a /Black Separation renamed": PS_ATTACKS["text"],
    }
    for name, document in documents.items():
        walls = []
        for _ in range(runs):
            start = time.perf_counter()
            await analyser.analyse(document)
            walls.append(time.perf_counter() - start)
        print(f"  {root.name:12} {name:40} median {statistics.median(walls) * 1000:6.1f} ms")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=15)
    p.add_argument("--against", type=Path, help="another checkout, measured in turns")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--one", type=Path, help=argparse.SUPPRESS)  # a single measurement
    args = p.parse_args()
    if args.one:
        asyncio.run(measure(args.one, args.runs))
        return
    print(f"load average before: {os.getloadavg()[0]:.1f}; {args.runs} documents a figure")
    checkouts = [ROOT, *([args.against.resolve()] if args.against else [])]
    for _ in range(args.rounds if args.against else 1):
        for root in checkouts:
            python = root / ".venv/bin/python"
            script = Path(__file__).resolve()
            subprocess.run(
                [str(python), str(script), "--one", str(root), "--runs", str(args.runs)],
                check=True,
                stderr=subprocess.DEVNULL,
            )
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
