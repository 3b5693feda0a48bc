"""Document analysis speed: pages per second for 100-page documents.

`analyse()` as job-capture runs it (pikepdf for PDF structure, one Ghostscript `ink_cov`
run per document for colour), on generated documents with known colour pages:

- mixed PDF: 100 A4 pages cycling through black text, gray shapes (RGB, gray, CMYK,
  ICC), colour shapes and text, images (colour, gray, neutral RGB), tiny colour marks and
  white pages; a few A3 and Letter pages;
- text PDF: 100 A4 pages of 60 lines of text each (a report), every fifth page with one
  blue line;
- PostScript: the mixed document's pages as a DSC PostScript program;
- rasters, as CUPS sends an IPP Everywhere printer that takes no PDF: 10 pages at 300 dpi
  in 8-bit sRGB, rendered by Ghostscript's `pwgraster` and `appleraster` devices, from
  the mixed document's first 10 pages and from 10 full-page photographs (noisy colour
  gradients, so nearly every pixel is a literal run). For comparison, the time CUPS's
  `rastertopdf` alone needs to turn the same PWG raster into PDF.

    .venv/bin/python bench/analysis_speed.py [--runs 5] [--dpi 100]

`--dpi` overrides the rendering resolution, to compare (the analysis uses MAX_DPI).
"""

from __future__ import annotations

import argparse
import io
import random
import statistics
import subprocess
import time

import pikepdf
from pikepdf import Dictionary, Name

from platen.job_capture import analysis
from platen.testing.documents import (
    A3,
    A4,
    LETTER,
    Page,
    make_pdf_pages,
    make_postscript,
    make_raster,
)

PAGES = 100
KINDS = [
    ("black-text", "black-shape"),
    ("black-text", "gray-shape", "devicegray-shape", "cmyk-gray-shape"),
    ("black-text", "color-shape", "color-text"),
    ("black-text", "icc-gray-shape", "gray-image", "rgb-gray-image"),
    ("black-text", "color-image", "gray-image"),
    ("black-text", "tiny-color-mark"),
    (),
    ("rgb-black-text", "icc-color-shape", "hairline-color"),
]


def mixed_pages() -> list[Page]:
    sizes = [A4] * 8 + [A3, LETTER]
    return [Page(size=sizes[n % len(sizes)], marks=KINDS[n % len(KINDS)]) for n in range(PAGES)]


def text_pdf() -> bytes:
    pdf = pikepdf.new()
    font = pdf.make_indirect(
        Dictionary(Type=Name.Font, Subtype=Name.Type1, BaseFont=Name.Helvetica)
    )
    line = "The quick brown fox jumps over the lazy dog; Platen counts every page."
    for page in range(PAGES):
        ops = ["BT /F1 10 Tf 12 TL 50 800 Td"]
        for n in range(60):
            colour = "0 0 1 rg" if page % 5 == 0 and n == 30 else "0 g"
            ops.append(f"{colour} ({line} {page}.{n}) '")
        ops.append("ET")
        contents = pdf.make_indirect(pikepdf.Stream(pdf, "\n".join(ops).encode()))
        pdf.pages.append(
            pikepdf.Page(
                Dictionary(
                    Type=Name.Page,
                    MediaBox=[0, 0, 595, 842],
                    Resources=Dictionary(Font=Dictionary(F1=font)),
                    Contents=contents,
                )
            )
        )
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def photo_pdf(pages: int) -> bytes:
    """Full A4 pages, each one 600x850 RGB image of a gradient with per-pixel noise."""
    rng = random.Random(11)
    pdf = pikepdf.new()
    width, height = 600, 850
    for page in range(pages):
        noise = rng.randbytes(width * height * 3)
        pixels = bytes(
            (value & 0x1F) + (x * 200 // width if n % 3 == page % 3 else 90)
            for n, value in enumerate(noise)
            for x in (n // 3 % width,)
        )
        image = pikepdf.Stream(
            pdf,
            pixels,
            Type=Name.XObject,
            Subtype=Name.Image,
            Width=width,
            Height=height,
            ColorSpace=Name.DeviceRGB,
            BitsPerComponent=8,
        )
        contents = pikepdf.Stream(pdf, b"q 595 0 0 842 0 0 cm /Im Do Q")
        pdf.pages.append(
            pikepdf.Page(
                Dictionary(
                    Type=Name.Page,
                    MediaBox=[0, 0, 595, 842],
                    Resources=Dictionary(XObject=Dictionary(Im=image)),
                    Contents=pdf.make_indirect(contents),
                )
            )
        )
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def rastertopdf_ms(document: bytes, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(
            ["/usr/lib/cups/filter/rastertopdf", "1", "bench", "bench", "1", ""],
            input=document,
            capture_output=True,
            check=True,
        )
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def measure(
    name: str, document: bytes, runs: int, expected_colour: int, pages: int = PAGES
) -> None:
    times, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = analysis.analyse(document)
        times.append(time.perf_counter() - started)
    assert result is not None and result.pages == pages
    assert len(result.color_pages) == expected_colour, result.color_pages
    median = statistics.median(times)
    print(
        f"{name:<12} {len(document) / 1024:8.0f} KiB  {pages} pages  "
        f"median {median * 1000:6.0f} ms  (min {min(times) * 1000:.0f}, "
        f"max {max(times) * 1000:.0f})  {pages / median:6.0f} pages/s  "
        f"{len(result.color_pages)} colour pages"
    )


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--dpi", type=int, default=analysis.MAX_DPI)
    args = p.parse_args()
    analysis.MAX_DPI = args.dpi
    pages = mixed_pages()
    colour = sum(page.color for page in pages)
    print(
        f"ink_cov, fast colour, {analysis.MAX_DPI} dpi (PDF: at most {analysis.PIXEL_BUDGET:,}"
        f" pixels a page), median of {args.runs} runs"
    )
    measure("mixed PDF", make_pdf_pages(pages), args.runs, colour)
    measure("text PDF", text_pdf(), args.runs, PAGES // 5)
    measure("PostScript", make_postscript(pages), args.runs, colour)
    ten = make_pdf_pages(pages[:10])
    ten_colour = sum(page.color for page in pages[:10])
    # A 300 dpi RGB raster cannot ask for ink: the mixed pages' colour is all RGB here.
    pwg = make_raster(ten, dpi=300)
    measure("PWG mixed", pwg, args.runs, ten_colour, pages=10)
    measure("URF mixed", make_raster(ten, fmt="urf", dpi=300), args.runs, ten_colour, pages=10)
    photos = make_raster(photo_pdf(10), dpi=300)
    measure("PWG photos", photos, args.runs, 10, pages=10)
    for name, document in (("PWG mixed", pwg), ("PWG photos", photos)):
        print(f"{name:<12} rastertopdf alone: median {rastertopdf_ms(document, args.runs):.0f} ms")


if __name__ == "__main__":
    main()
