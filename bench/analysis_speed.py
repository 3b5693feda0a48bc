"""Document analysis speed: pages per second for 100-page documents.

`analyse()` as job-capture runs it (pikepdf for PDF structure, one Ghostscript `ink_cov`
run per document for colour), on generated documents with known colour pages:

- mixed PDF: 100 A4 pages cycling through black text, gray shapes (RGB, gray, CMYK,
  ICC), colour shapes and text, images (colour, gray, neutral RGB), tiny colour marks and
  white pages; a few A3 and Letter pages;
- text PDF: 100 A4 pages of 60 lines of text each (a report), every fifth page with one
  blue line;
- PostScript: the mixed document's pages as a DSC PostScript program.

    .venv/bin/python bench/analysis_speed.py [--runs 5] [--dpi 100]

`--dpi` overrides the rendering resolution, to compare (the analysis uses MAX_DPI).
"""

from __future__ import annotations

import argparse
import io
import statistics
import time

import pikepdf
from pikepdf import Dictionary, Name

from platen.job_capture import analysis
from platen.testing.documents import A3, A4, LETTER, Page, make_pdf_pages, make_postscript

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


def measure(name: str, document: bytes, runs: int, expected_colour: int) -> None:
    times, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = analysis.analyse(document)
        times.append(time.perf_counter() - started)
    assert result is not None and result.pages == PAGES
    assert len(result.color_pages) == expected_colour, result.color_pages
    median = statistics.median(times)
    print(
        f"{name:<12} {len(document) / 1024:8.0f} KiB  {PAGES} pages  "
        f"median {median * 1000:6.0f} ms  (min {min(times) * 1000:.0f}, "
        f"max {max(times) * 1000:.0f})  {PAGES / median:6.0f} pages/s  "
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


if __name__ == "__main__":
    main()
