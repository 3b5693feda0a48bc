"""What a document is: its format, pages, paper and which pages print in colour.

A PDF's structure (page count, encryption, damage, paper) comes from pikepdf; what its
pages print comes from rendering them once with Ghostscript's `ink_cov` device. A
PostScript document is a program, so everything about it comes from running it in
Ghostscript. PWG and Apple raster (what CUPS sends an IPP Everywhere printer that takes
no PDF) are pages of pixels, read in `raster`. Every reason in `UnreadableDocument` is
shown to the user who sent the job.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import secrets
import selectors
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

import pikepdf

from platen.job_capture.raster import RasterError, raster_format, read_raster
from platen.job_capture.separations import (
    UnreadableContent,
    alternates_for_postscript,
    use_alternates,
)

MAX_PAGES = 10_000
DEFAULT_TIMEOUT = 120.0
GHOSTSCRIPT = "gs"

# Rendering resolution. Vector marks of any size are always caught: Ghostscript paints
# every pixel a fill touches, so a 2x2 pt square covers at least one pixel even at 36
# dpi. Glyphs are rasterised by pixel centre instead, so the smallest coloured text is
# caught only at higher resolution (at 100 dpi only 2-3 pt glyphs can slip through). The
# cost is small: glyph rendering, not pixels, dominates. But `ink_cov` prints coverage
# as a percentage with five decimals, so on a page of more than about 20 million pixels
# a single coloured pixel would round to zero; PIXEL_BUDGET keeps the largest page of a
# PDF well under that (A0 renders at 71 dpi). PostScript page sizes are known only once
# it has run, so it renders at MAX_DPI (A0: 16 million pixels).
MAX_DPI = 100
MIN_DPI = 36
PIXEL_BUDGET = 8_000_000
POINTS_PER_MM = 72 / 25.4

PAPER_SIZES_MM: dict[str, tuple[float, float]] = {
    "A2": (420, 594),
    "A3": (297, 420),
    "A4": (210, 297),
    "A5": (148, 210),
    "A6": (105, 148),
    "Letter": (215.9, 279.4),
    "Legal": (215.9, 355.6),
    "Tabloid": (279.4, 431.8),
}
PAPER_TOLERANCE_MM = 2.0

# Device-dependent ink controls a PDF's graphics states may carry. Ghostscript honours
# them in the fast colour path used below, and an undercolour removal of 1 would erase
# every colour from the analysis (not from the printout): they are dropped before
# rendering, so the analysis sees the colours the page asks for.
INK_CONTROLS = ("/BG", "/BG2", "/UCR", "/UCR2", "/TR", "/TR2")

# Ghostscript setup run before the document: black generation and undercolour removal
# that turn every neutral colour into black ink only (see `prints_in_colour`). Removing
# NEUTRAL_TOLERANCE more than the neutral part also clears near-neutral pixels, whose RGB
# channels differ by at most that much (3% is about 8 of 255): converters write gray so
# (poppler's pdftocairo turns CMYK 50% black into RGB 145 143 143), and so do gray
# scans. It works per pixel, so a tiny but saturated mark is still colour.
NEUTRAL_TOLERANCE = 0.03
NEUTRALS_TO_BLACK = f"{{}} setblackgeneration {{{NEUTRAL_TOLERANCE} add}} setundercolorremoval"
# A PostScript document can change the same ink controls a PDF's graphics states carry,
# and nothing can be stripped from a program before it runs: `{pop 1}
# setundercolorremoval` or `{pop 1} settransfer` leaves a red page without coloured ink
# in `ink_cov`, though an RGB or PDF printer prints it red. So, after NEUTRALS_TO_BLACK
# and before any document, the operators that set them are replaced in systemdict by
# procedures that take their operands and do nothing, and systemdict is made read-only
# again (Ghostscript starts with it writable for this and for `separations`:
# -dWRITESYSTEMDICT). However a document names an operator (by name, `//name`,
# `systemdict ... get`, a name made with `cvn`, decoded code run with `exec`) it looks it
# up in systemdict and finds the
# replacement; save and restore cannot undo it (systemdict lives in global VM). The
# operator objects themselves remain inside Ghostscript's own procedures that use them;
# those a document can read (and take an operator out of) or steer (`.setdefaultscreen`
# loads the undercolour removal it sets by name, which a document can define) are
# replaced too. They only set up halftones, which a contone device such as `ink_cov`
# does not use (nor a halftone dictionary's TransferFunction). test_postscript_ink_controls
# walks everything a document can read and finds none of the operators.
INK_CONTROL_OPERATORS = {
    "setblackgeneration": 1,
    "setundercolorremoval": 1,
    "settransfer": 1,
    "setcolortransfer": 4,
    # Ghostscript's own procedures that hold the operators above (gs_init.ps):
    ".setdefaultscreen": 0,
    ".setloresscreen": 1,
    ".sethiresscreen": 1,
}
# A PostScript document can also run a PDF, its own tail (`currentfile runpdf`), and
# Ghostscript's PDF interpreters set a PDF's ink controls themselves, past the operators
# above. Nothing a printer driver writes does that, so for PostScript every way into
# them fails with an error: the document is refused, not analysed blind.
PDF_INTERPRETER_ENTRIES = (
    "runpdf",
    "runpdfbegin",
    "runpdfpagerange",
    "runpdfend",
    "dopdfpages",
    "newpdf_runpdf",
    "newpdf_runpdfbegin",
    "newpdf_runpdfpagerange",
    "newpdf_runpdfend",
    "newpdf_dopdfpages",
    "newpdf_pdfopen",
    ".PDFInit",
    ".PDFFile",
    ".PDFStream",
)


def _replace_in_systemdict(definitions: Iterable[str]) -> str:
    """PostScript that (re)defines these `/name {...}` in systemdict, then locks it."""
    return (
        "currentglobal true setglobal systemdict begin "
        + " ".join(f"{definition} bind executeonly def" for definition in definitions)
        + f" end setglobal {LOCK_SYSTEMDICT}"
    )


# Ghostscript sets its default halftone (`.setdefaulthalftone`, gs_init.ps) whenever a
# page device is installed: each page of a PDF, each `setpagedevice` of a PostScript
# program. `ink_cov` is a contone device and never halftones, so the screen it builds is
# never used: our setup makes it a procedure that does nothing, for every document. The
# ink reports are the same (test_default_halftone). A document that sets a halftone
# itself still can; that is as inert (see INK_CONTROL_OPERATORS).
CONTONE_ONLY = "/.setdefaulthalftone {}"
# Ghostscript's option to start with systemdict writable, for INERT_FOR_POSTSCRIPT and
# ALTERNATES_FOR_POSTSCRIPT: one of `ghostscript_options`. It prints a warning (on stdout,
# among the page hook's lines) that we do as it says. A PDF's setup locks systemdict too:
# nothing of a PDF runs as PostScript, but nothing needs it writable either.
WRITABLE_SYSTEMDICT = "-dWRITESYSTEMDICT"
LOCK_SYSTEMDICT = "systemdict readonly pop"
INERT_FOR_POSTSCRIPT = _replace_in_systemdict(
    [
        *(
            f"/{name} {{{' '.join(['pop'] * operands)}}}"
            for name, operands in INK_CONTROL_OPERATORS.items()
        ),
        *(f"/{name} {{/{name} /invalidaccess signalerror}}" for name in PDF_INTERPRETER_ENTRIES),
        CONTONE_ONLY,
    ]
)
# For PostScript: after each page, report its size on a line of its own (and stop a
# document that goes past the page limit). The count lives in global VM, which the
# document's save/restore around its pages cannot undo.
PAGE_MARKER = "platen-page:"
POSTSCRIPT_PAGE_HOOK = r"""
globaldict /platen-pages 0 put
<< /EndPage {
  exch pop dup 2 ne {
    globaldict /platen-pages 2 copy get 1 add put
    (\nMARKER ) print currentpagedevice /PageSize get aload pop exch =only ( ) print =
    flush
    globaldict /platen-pages get LIMIT gt { quit } if
  } if
  2 ne
} bind >> setpagedevice
"""
MAX_OUTPUT_LINE = 4096


Format = Literal["pdf", "postscript", "pwg-raster", "urf"]
FORMATS: tuple[Format, ...] = ("pdf", "postscript", "pwg-raster", "urf")


class UnreadableDocument(ValueError):
    """The document cannot be analysed; it must not be printed (free or blind)."""


@dataclass(frozen=True)
class Analysis:
    """What a document prints, page by page (pages numbered from 1).

    `analysis_ms` is how long the analysis took; it is not part of what the document is,
    so two analyses of the same document compare equal.
    """

    format: Format
    pages: int
    color_pages: tuple[int, ...]
    page_sizes: tuple[str, ...]
    analysis_ms: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"unknown format {self.format!r}")
        if self.pages < 1 or len(self.page_sizes) != self.pages:
            raise ValueError("an analysis needs one paper size for each of at least one page")
        if list(self.color_pages) != sorted(set(self.color_pages)) or not all(
            1 <= page <= self.pages for page in self.color_pages
        ):
            raise ValueError("colour pages must be distinct page numbers, in order")


def analyse(
    document: bytes, *, timeout: float = DEFAULT_TIMEOUT, renderer: Renderer | None = None
) -> Analysis:
    """What `document` is. `renderer` runs Ghostscript (`resident_ghostscript`, in an
    analysis worker); without one, Ghostscript is started as a program for this document."""
    started = time.monotonic()
    deadline = started + timeout
    if not document:
        raise UnreadableDocument("the document is empty")
    fmt = document_format(document)
    if fmt is None:
        raise UnreadableDocument(
            "unsupported document format (only PDF, PostScript, PWG raster and Apple raster"
            " are accepted)"
        )
    if fmt == "pdf":
        sizes, inks = _analyse_pdf(document, deadline, timeout, renderer)
        colour = [prints_in_colour(*ink) for ink in inks]
    elif fmt == "postscript":
        sizes, inks = _analyse_postscript(document, deadline, timeout, renderer)
        colour = [prints_in_colour(*ink) for ink in inks]
    else:
        sizes, colour = _analyse_raster(document, deadline, timeout)
    return Analysis(
        format=fmt,
        pages=len(sizes),
        color_pages=tuple(n for n, in_colour in enumerate(colour, start=1) if in_colour),
        page_sizes=tuple(paper_name(w, h) for w, h in sizes),
        analysis_ms=round((time.monotonic() - started) * 1000),
    )


def document_format(document: bytes) -> Format | None:
    """The format `analyse` takes `document` for (None: one it does not accept). Cheap: it
    reads the first bytes only."""
    raster = raster_format(document)
    if raster is not None:
        return raster
    head = document.lstrip()[:5]
    if head.startswith(b"%PDF-"):
        return "pdf"
    if head.startswith(b"%!"):
        return "postscript"
    return None


# --------------------------------------------------------------------------- pure rules


def prints_in_colour(c: float, m: float, y: float, k: float) -> bool:
    """Whether a page with this ink coverage (from `ink_cov`) prints in colour.

    Ghostscript renders with its non-ICC colour conversion and NEUTRALS_TO_BLACK, so a
    neutral colour (gray, RGB with R = G = B, ICC-based gray, black-ink CMYK, and RGB
    within NEUTRAL_TOLERANCE of gray) becomes black ink only, while any colour with a hue
    keeps some cyan, magenta or yellow. With the default ICC conversion an RGB gray comes
    out as cyan, magenta and yellow plus black instead. Only per-page totals are reported,
    which is why "equal C, M and Y" cannot mean gray: red, green and blue shapes of equal
    area also add up to equal C, M and Y. So any coloured ink at all is colour, however
    little: a 2x2 pt red mark still needs the colour toner. Black `k` never matters. CMYK
    that asks for coloured ink (a "rich black") is colour, since that is what it prints.
    """
    return c > 0 or m > 0 or y > 0


def either_view(
    first: list[tuple[float, float, float, float]], second: list[tuple[float, float, float, float]]
) -> list[tuple[float, float, float, float]]:
    """Page by page, the most of each ink in two renderings of the same pages: a page is
    colour if it prints in colour on either kind of printer (see `separations`)."""
    if len(first) != len(second):
        raise ValueError("two renderings of the same pages have as many pages")
    return [
        (max(a[0], b[0]), max(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))
        for a, b in zip(first, second, strict=True)
    ]


INK_LINE = re.compile(r"\s*(\d+\.\d+)\s+(\d+\.\d+)\s+(\d+\.\d+)\s+(\d+\.\d+)\s+CMYK OK\s*")


def parse_ink_coverage(text: str) -> list[tuple[float, float, float, float]]:
    """One (c, m, y, k) per page from `ink_cov` output; ValueError if anything is off."""
    pages = []
    for line in text.splitlines():
        match = INK_LINE.fullmatch(line)
        if not match:  # "CMYK ERROR" (with -1 for every ink) included
            raise ValueError(f"unexpected ink coverage line {line!r}")
        c, m, y, k = (float(value) for value in match.groups())
        pages.append((c, m, y, k))
    return pages


def paper_name(width: float, height: float) -> str:
    """The paper a page of this size (in points) prints on, in either orientation.

    A standard size within PAPER_TOLERANCE_MM, else "<short>x<long>mm". Orientation is
    left out on purpose: a landscape A4 page, or one turned by /Rotate, is still A4.
    """
    short, long = sorted((width / POINTS_PER_MM, height / POINTS_PER_MM))
    for name, (paper_short, paper_long) in PAPER_SIZES_MM.items():
        if (
            abs(short - paper_short) <= PAPER_TOLERANCE_MM
            and abs(long - paper_long) <= PAPER_TOLERANCE_MM
        ):
            return name
    return f"{math.floor(short + 0.5)}x{math.floor(long + 0.5)}mm"


def render_resolution(sizes: Iterable[tuple[float, float]]) -> int:
    """The dpi to render pages of these sizes (in points) at: see MAX_DPI."""
    largest = max((w * h / 72 / 72 for w, h in sizes), default=0.0)
    if largest <= 0:
        return MAX_DPI
    return max(MIN_DPI, min(MAX_DPI, math.floor(math.sqrt(PIXEL_BUDGET / largest))))


# --------------------------------------------------------------------------- PDF


def _analyse_pdf(
    document: bytes, deadline: float, timeout: float, renderer: Renderer | None = None
) -> tuple[list[tuple[float, float]], list[tuple[float, float, float, float]]]:
    sizes: list[tuple[float, float] | None] = []
    # The PDF as a CMYK printer prints it (without ink controls), and as an RGB printer
    # does, if that differs: with its process colorants renamed (`separations`).
    device_view = alternate_view = None
    try:
        with pikepdf.open(io.BytesIO(document)) as pdf:
            pages = len(pdf.pages)
            # qpdf silently rebuilds a damaged file, and a truncated one then counts
            # fewer pages than it has: printing or pricing it would be a guess.
            damaged = bool(pdf.get_warnings())
            if not damaged and 1 <= pages <= MAX_PAGES:
                sizes = [_page_size(page) for page in pdf.pages]
                damaged = bool(pdf.get_warnings())
                if _drop_ink_controls(pdf):
                    device_view = _saved(pdf)
                if use_alternates(pdf):
                    alternate_view = _saved(pdf)
    except pikepdf.PasswordError:
        raise UnreadableDocument("the PDF is password-protected") from None
    except UnreadableContent:
        raise UnreadableDocument(
            "the PDF cannot be analysed (content encoded with an image's filter that cannot"
            " be read: JPX, JBIG2, CCITT or damaged)"
        ) from None
    except (pikepdf.PikepdfError, ValueError, RuntimeError):
        raise UnreadableDocument("the PDF cannot be read (damaged or not a PDF)") from None
    if damaged:
        raise UnreadableDocument("the PDF is damaged or truncated")
    if pages < 1:
        raise UnreadableDocument("the PDF has no pages")
    if pages > MAX_PAGES:
        raise UnreadableDocument(f"the PDF has too many pages ({pages}; the limit is {MAX_PAGES})")
    if any(size is None for size in sizes):
        raise UnreadableDocument("the PDF has a page without a valid size")
    page_sizes = [size for size in sizes if size is not None]
    dpi = render_resolution(page_sizes)
    other = None
    if alternate_view is not None and renderer is not None:
        # The resident interpreter runs one document, once: the second view is rendered
        # first, in a fork of this child made before its interpreter has run anything.
        view = alternate_view
        other = _Standby(
            lambda: _ghostscript(view, dpi, deadline, timeout, hook=False, renderer=renderer)
        ).run()
    run = _ghostscript(
        device_view or document, dpi, deadline, timeout, hook=False, renderer=renderer
    )
    if run.returncode != 0 or len(run.inks) != pages:
        raise UnreadableDocument("the PDF cannot be printed (its pages cannot be rendered)")
    if alternate_view is None:
        return page_sizes, run.inks
    if other is None:  # no resident interpreter: `gs` renders the second view
        other = _ghostscript(alternate_view, dpi, deadline, timeout, hook=False)
    if other.returncode != 0 or len(other.inks) != pages:
        raise UnreadableDocument("the PDF cannot be printed (its pages cannot be rendered)")
    return page_sizes, either_view(run.inks, other.inks)


def _saved(pdf: pikepdf.Pdf) -> bytes:
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def _page_size(page: pikepdf.Page) -> tuple[float, float] | None:
    """The size in points of what prints: the CropBox, clipped to the MediaBox."""
    try:
        media = [float(v) for v in page.mediabox]
        crop = [float(v) for v in page.cropbox]
        unit = float(page.obj.get("/UserUnit", 1))
    except (TypeError, ValueError, pikepdf.PdfError):
        return None
    if len(media) != 4 or len(crop) != 4 or not all(map(math.isfinite, [*media, *crop, unit])):
        return None
    width = min(max(media[0], media[2]), max(crop[0], crop[2])) - max(
        min(media[0], media[2]), min(crop[0], crop[2])
    )
    height = min(max(media[1], media[3]), max(crop[1], crop[3])) - max(
        min(media[1], media[3]), min(crop[1], crop[3])
    )
    if width < 1 or height < 1 or unit <= 0:
        return None
    return width * unit, height * unit


def _drop_ink_controls(pdf: pikepdf.Pdf) -> bool:
    """Remove INK_CONTROLS from every graphics state; True if there were any."""

    def clean(state: object) -> bool:
        if not isinstance(state, pikepdf.Dictionary):
            return False
        found = [key for key in INK_CONTROLS if key in state]
        for key in found:
            del state[key]
        return bool(found)

    changed = False
    for obj in pdf.objects:
        if not isinstance(obj, (pikepdf.Dictionary, pikepdf.Stream)):
            continue
        if obj.get("/Type") == pikepdf.Name.ExtGState:
            changed |= clean(obj)
        if obj.get("/PatternType") == 2:  # a shading pattern holds one graphics state
            changed |= clean(obj.get("/ExtGState"))
        for holder in (obj, obj.get("/Resources")):
            states = holder.get("/ExtGState") if isinstance(holder, pikepdf.Dictionary) else None
            if isinstance(states, pikepdf.Dictionary) and holder.get("/PatternType") != 2:
                for state in states.values():
                    changed |= clean(state)
    return changed


# --------------------------------------------------------------------------- PostScript


def _analyse_postscript(
    document: bytes, deadline: float, timeout: float, renderer: Renderer | None = None
) -> tuple[list[tuple[float, float]], list[tuple[float, float, float, float]]]:
    # Whether a second run is needed is known only after the first: with the resident
    # interpreter (which runs one document, once), a fork made before the first run waits
    # to render it, as a CMYK printer would print the document.
    standby = None
    if renderer is not None:
        standby = _Standby(
            lambda: _ghostscript(
                document, MAX_DPI, deadline, timeout, hook=True, alternates=False,
                renderer=renderer,
            )
        )  # fmt: skip
    try:
        return _postscript_views(document, deadline, timeout, renderer, standby)
    finally:
        if standby is not None:
            standby.dismiss()


def _postscript_views(
    document: bytes,
    deadline: float,
    timeout: float,
    renderer: Renderer | None,
    standby: _Standby | None,
) -> tuple[list[tuple[float, float]], list[tuple[float, float, float, float]]]:
    run = _ghostscript(document, MAX_DPI, deadline, timeout, hook=True, renderer=renderer)
    if len(run.sizes) > MAX_PAGES:
        raise UnreadableDocument(
            f"the PostScript document has too many pages (the limit is {MAX_PAGES})"
        )
    if run.returncode != 0:
        raise UnreadableDocument(
            "the PostScript document cannot be printed (it stops with an error)"
        )
    if not run.inks and not run.sizes:
        raise UnreadableDocument("the PostScript document has no pages")
    if len(run.inks) != len(run.sizes) or any(w < 1 or h < 1 for w, h in run.sizes):
        # The document replaced the page hook, or wrote lines that look like its output.
        raise UnreadableDocument(
            "the PostScript document cannot be analysed (it changes page handling)"
        )
    problem = dsc_truncation(document, len(run.sizes))
    if problem:
        raise UnreadableDocument(problem)
    if not run.renamed:
        return run.sizes, run.inks
    # A process colorant was renamed: its pages print in the alternate on an RGB printer
    # (this run) and in the colorant itself on a CMYK printer. Run again as a CMYK printer
    # would (in the standby fork, or `gs` without a resident interpreter) and charge the
    # colour of either.
    if standby is not None:
        device = standby.run()
    else:
        device = _ghostscript(document, MAX_DPI, deadline, timeout, hook=True, alternates=False)
    if device.returncode != 0 or device.sizes != run.sizes or len(device.inks) != len(run.inks):
        raise UnreadableDocument(
            "the PostScript document cannot be analysed (it does not print the same pages twice)"
        )
    return run.sizes, either_view(run.inks, device.inks)


DSC_PAGES = re.compile(rb"^%%Pages:[ \t]*(\(atend\)|\d+)", re.MULTILINE)
DSC_END_PADDING = b" \t\r\n\x04"  # drivers end a job with a newline or a ^D


def dsc_truncation(document: bytes, rendered: int) -> str | None:
    """Why a PostScript document that ran to its end is nevertheless cut short, if it is.

    A cut PostScript program still runs: it prints the pages before the cut. Only a
    document that follows the Document Structuring Conventions (it starts with
    `%!PS-Adobe-`, as every driver and converter writes) says how it ends (`%%EOF`) and
    how many pages it has (`%%Pages:`, in its header or, if "(atend)", in its trailer);
    a plain `%!PS` program cut between two pages cannot be told from a shorter one.
    `%%Pages: 0` is what some applications write for a page they do not count: unknown.
    """
    text = document.lstrip()
    if not text.startswith(b"%!PS-Adobe-"):
        return None
    if not text.rstrip(DSC_END_PADDING).endswith(b"%%EOF"):
        return "the PostScript document is truncated (its end is missing)"
    header_end = text.find(b"%%EndComments")
    header = DSC_PAGES.search(text if header_end < 0 else text[:header_end])
    if header is None:
        return None
    declared = header.group(1)
    if declared == b"(atend)":
        trailer = text.rfind(b"%%Trailer")
        found = DSC_PAGES.findall(text[trailer:]) if trailer >= 0 else []
        counts = [value for value in found if value != b"(atend)"]
        if not counts:
            return "the PostScript document is truncated (its trailer is missing)"
        declared = counts[-1]
    if int(declared) not in (0, rendered):
        return (
            f"the PostScript document is truncated or damaged (it has {int(declared)} pages,"
            f" but {rendered} print)"
        )
    return None


# --------------------------------------------------------------------------- raster


def _analyse_raster(
    document: bytes, deadline: float, timeout: float
) -> tuple[list[tuple[float, float]], list[bool]]:
    try:
        pages = read_raster(
            document, tolerance=NEUTRAL_TOLERANCE, max_pages=MAX_PAGES, deadline=deadline
        )
    except RasterError as exc:
        raise UnreadableDocument(str(exc)) from None
    except TimeoutError:
        raise UnreadableDocument(
            f"the document takes too long to analyse (the limit is {timeout:g} seconds)"
        ) from None
    return [(page.width_pt, page.height_pt) for page in pages], [page.color for page in pages]


# --------------------------------------------------------------------------- Ghostscript


@dataclass
class _Run:
    returncode: int
    inks: list[tuple[float, float, float, float]]
    sizes: list[tuple[float, float]]
    renamed: bool = False  # the setup renamed a process colorant (PostScript)


class Renderer(Protocol):
    """Runs Ghostscript on a document with `ghostscript_options` and this `setup`, in the
    current working directory, leaving the `ink_cov` report in INK_REPORT there."""

    def render(
        self, document: bytes, dpi: int, setup: str, markers: PageMarkers
    ) -> int:  # pragma: no cover - a protocol
        """Ghostscript's exit status (0: the document ran to its end)."""
        ...


INK_REPORT = "ink.txt"


def ghostscript_options(output: str) -> list[str]:
    """What every analysis runs Ghostscript with, started or resident (but the resolution)."""
    return [
        "-dSAFER",
        "-dBATCH",
        "-dNOPAUSE",
        "-q",
        "-sDEVICE=ink_cov",
        "-dUseFastColor",  # the non-ICC conversion, in which neutrals can map to black
        # PostScript has no ICC colour spaces: converters (poppler's pdftops, as CUPS
        # runs it) write ICC-based RGB and gray as CIEBasedABC and CIEBasedA, which
        # would go through ICC conversion and turn gray into coloured ink. Their
        # values are the ICC-based RGB or gray values, so read them as such.
        "-dNOCIE",
        "-dNOINTERPOLATE",
        "-dPrinted",  # annotations and optional content as printed, not as on screen
        "-dUseCropBox",
        "-sDEFAULTPAPERSIZE=a4",  # PostScript that sets no page size
        f"-sOutputFile={output}",  # not stdout, where a document can write too
        WRITABLE_SYSTEMDICT,  # for our setup only: it locks systemdict again
    ]


def ghostscript_setup(hook: bool, renamed_marker: str | None = "platen-renamed") -> str:
    """Our PostScript run before the document: if any of it fails, Ghostscript stops
    with an error before the document runs (`-c` with -dBATCH; the resident instance
    runs the document only after its setup succeeded). One statement a line: `gs -c`
    takes each line as an argument of its own, and no argument may be longer than 2048
    characters. For PostScript (`hook`), with `renamed_marker` its Separation and DeviceN
    spaces use their alternate (and the marker is written if one was renamed); without,
    Ghostscript paints their process colorants itself, as a CMYK printer does."""
    if not hook:
        return f"{NEUTRALS_TO_BLACK}\n{_replace_in_systemdict([CONTONE_ONLY])}"
    page_hook = " ".join(POSTSCRIPT_PAGE_HOOK.split()).replace("MARKER", PAGE_MARKER)
    return "\n".join(
        [
            NEUTRALS_TO_BLACK,
            *(alternates_for_postscript(renamed_marker) if renamed_marker else ()),
            INERT_FOR_POSTSCRIPT,
            page_hook.replace("LIMIT", str(MAX_PAGES)),
        ]
    )


def _ghostscript(
    document: bytes,
    dpi: int,
    deadline: float,
    timeout: float,
    *,
    hook: bool,
    renderer: Renderer | None = None,
    alternates: bool = True,
) -> _Run:
    """Render `document` once with the `ink_cov` device, within `deadline`. PostScript
    (`hook`) is run with its Separation and DeviceN spaces in their alternate unless
    `alternates` is False."""
    # Random per run: a document cannot write it to make the analysis believe it renamed.
    marker = f"platen-renamed:{secrets.token_hex(16)}" if alternates else None
    setup = ghostscript_setup(hook, marker)
    markers = PageMarkers(marker)
    too_long = UnreadableDocument(
        f"the document takes too long to analyse (the limit is {timeout:g} seconds)"
    )
    if renderer is not None:
        # In an analysis worker's child, whose parent kills it at the deadline: checked
        # here too, so that a document that is merely slow gets the same answer either way.
        if time.monotonic() > deadline:
            raise too_long
        returncode = renderer.render(document, dpi, setup, markers)
        if time.monotonic() > deadline:
            raise too_long
        returncode, inks = _ink_report(Path(INK_REPORT), returncode)
        return _Run(returncode, inks, markers.sizes, markers.renamed)
    executable = shutil.which(GHOSTSCRIPT)
    if executable is None:  # not the user's fault: an installation problem, not a refusal
        raise RuntimeError(f"Ghostscript ({GHOSTSCRIPT}) is not installed")
    # GS_OPTIONS in the environment would be read as extra command-line options.
    env = {
        key: value for key, value in os.environ.items() if key not in ("GS_OPTIONS", "GS_DEVICE")
    }
    with tempfile.TemporaryDirectory(prefix="platen-analysis-") as tmp:
        source, ink = Path(tmp, "document"), Path(tmp, INK_REPORT)
        source.write_bytes(document)
        args = [
            executable,
            *ghostscript_options(str(ink)),
            f"-r{dpi}",
            "-c",
            *setup.splitlines(),
            "-f",
            str(source),
        ]
        process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        try:
            sizes = _read_page_markers(process, deadline, markers)
            returncode = process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            raise too_long from None
        finally:
            if process.poll() is None:
                process.kill()
            process.wait()
            assert process.stdout is not None
            process.stdout.close()
        returncode, inks = _ink_report(ink, returncode)
    return _Run(returncode, inks, sizes, markers.renamed)


class _Standby:
    """`render` (a `_ghostscript` call with the resident renderer) in a fork of this
    process made at once, before its interpreter has run anything: a second view of the
    same document in an interpreter no run has touched, for a fork's few milliseconds
    where starting `gs` costs 50 to 75. The fork waits until `run` (or ends at `dismiss`,
    or when this process ends); it stays in this process's group and under its limits, so
    the service's kill at the deadline takes it too, and writes its ink report in a folder
    of its own. `run` waits for its answer, so the two never render at once."""

    def __init__(self, render: Callable[[], _Run]) -> None:
        go, self._go = os.pipe()
        self._answers, answer = os.pipe()
        self._pid = os.fork()
        if self._pid == 0:  # pragma: no cover - in the fork, which ends here
            try:
                os.close(self._go)
                os.close(self._answers)
                if os.read(go, 1) != b"g":
                    os._exit(0)  # dismissed, or the process that made it is gone
                os.mkdir("second view")
                os.chdir("second view")
                try:
                    run = render()
                    reply: dict[str, object] = {
                        "returncode": run.returncode,
                        "inks": run.inks,
                        "sizes": run.sizes,
                    }
                except UnreadableDocument as exc:
                    reply = {"refused": str(exc)}
                except MemoryError:
                    reply = {"memory": True}
                with os.fdopen(answer, "w") as out:
                    json.dump(reply, out)
            except BaseException:
                os._exit(70)
            os._exit(0)
        os.close(go)
        os.close(answer)
        self._done = False

    def dismiss(self) -> None:
        if not self._done:
            self._done = True
            os.close(self._go)
            os.close(self._answers)
            os.waitpid(self._pid, 0)

    def run(self) -> _Run:
        self._done = True
        os.write(self._go, b"g")
        os.close(self._go)
        with os.fdopen(self._answers) as source:
            text = source.read(MAX_ANSWER + 1)
        _, status = os.waitpid(self._pid, 0)
        if status != 0 or not text or len(text) > MAX_ANSWER:
            # Killed (its CPU limit) or crashed: as `gs` ending with a signal would be.
            return _Run(returncode=os.waitstatus_to_exitcode(status) or -1, inks=[], sizes=[])
        reply = json.loads(text)
        if "refused" in reply:
            raise UnreadableDocument(reply["refused"])
        if reply.get("memory"):
            raise MemoryError
        inks = [(c, m, y, k) for c, m, y, k in reply["inks"]]
        sizes = [(w, h) for w, h in reply["sizes"]]
        return _Run(returncode=reply["returncode"], inks=inks, sizes=sizes)


# A fork's answer: a returncode and at most MAX_PAGES pages of four inks and a size (well
# under 200 bytes a page); anything longer is not an answer the fork wrote.
MAX_ANSWER = (MAX_PAGES + 1) * 256


def _ink_report(ink: Path, returncode: int) -> tuple[int, list[tuple[float, float, float, float]]]:
    """The pages' inks from the `ink_cov` report, and the exit status (-1 if the report is
    not one ink_cov wrote)."""
    try:
        if not ink.exists():
            return returncode, []
        # ink_cov writes under 50 bytes a page; anything much bigger was not its doing.
        if ink.stat().st_size > (MAX_PAGES + 1) * 64:
            raise ValueError("ink coverage output too large")
        # Read as bytes and decoded: `read_text` looks the codec up by name, which imports
        # its module in every analysis child (the parent never reads one), 0.3 ms each.
        return returncode, parse_ink_coverage(ink.read_bytes().decode("ascii"))
    except (ValueError, UnicodeDecodeError):
        return returncode or -1, []


class PageMarkers:
    """The page hook's reports among what Ghostscript writes on stdout, fed as it comes.

    The document writes to stdout too, as much as it likes: nothing else is kept, and
    once more pages were reported than the limit allows, `full` says to stop reading.
    `renamed` says whether the setup wrote `renamed_marker` (a random one per run, which a
    document cannot know to write itself): it renamed a process colorant."""

    def __init__(self, renamed_marker: str | None = None) -> None:
        self.sizes: list[tuple[float, float]] = []
        self.renamed = False
        self._renamed_marker = renamed_marker.encode() if renamed_marker else None
        self._pending = b""

    @property
    def full(self) -> bool:
        return len(self.sizes) > MAX_PAGES

    def feed(self, chunk: bytes) -> None:
        if self.full:
            return
        *lines, pending = (self._pending + chunk).split(b"\n")
        self._pending = pending[-MAX_OUTPUT_LINE:]
        for line in lines:
            if self._renamed_marker is not None and line.strip() == self._renamed_marker:
                self.renamed = True
            size = _page_marker(line)
            if size is not None:
                self.sizes.append(size)


def _read_page_markers(
    process: subprocess.Popen[bytes], deadline: float, markers: PageMarkers
) -> list[tuple[float, float]]:
    """Read Ghostscript's stdout to its end, keeping only the page hook's lines."""
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while not markers.full:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not selector.select(remaining):
                raise subprocess.TimeoutExpired(GHOSTSCRIPT, remaining)
            chunk = os.read(process.stdout.fileno(), 65536)
            if not chunk:
                break
            markers.feed(chunk)
    if markers.full:  # enough: the document is refused whatever else it does
        process.kill()
    return markers.sizes


def _page_marker(line: bytes) -> tuple[float, float] | None:
    text = line.strip().decode("ascii", "replace")
    if not text.startswith(PAGE_MARKER):
        return None
    try:
        width, height = (float(value) for value in text[len(PAGE_MARKER) :].split())
    except ValueError:
        return (0.0, 0.0)  # a malformed report: counted, and refused as such
    if not (math.isfinite(width) and math.isfinite(height)):
        return (0.0, 0.0)
    return (width, height)
