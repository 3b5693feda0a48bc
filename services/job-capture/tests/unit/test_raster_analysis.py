"""PWG raster and Apple raster (URF): what CUPS sends an IPP Everywhere printer without PDF.

Rasters with known answers are rendered by Ghostscript's `pwgraster` and `appleraster`
devices from the generated PDFs of platen.testing.documents; a few lines are built by
hand where a test needs one exact pixel or one exact byte.
"""

import random
import struct

import pytest

from platen.job_capture import raster as raster_module
from platen.job_capture.analysis import Analysis, UnreadableDocument, analyse
from platen.testing.documents import (
    A3,
    A4,
    A5,
    LEGAL,
    LETTER,
    MARKS,
    TABLOID,
    Page,
    make_pdf_pages,
    make_raster,
)

MM = 72 / 25.4
FORMATS = {"pwg": "pwg-raster", "urf": "urf"}


def mark_pages():
    return [Page(marks=(mark,)) for mark in MARKS] + [Page()]


@pytest.fixture(scope="module")
def marks_pdf():
    return make_pdf_pages(mark_pages())


# --------------------------------------------------------------------------- known answers


@pytest.mark.parametrize("fmt", ["pwg", "urf"])
@pytest.mark.parametrize("bits", [8, 16])
def test_rgb_raster_has_exactly_the_known_colour_pages(marks_pdf, fmt, bits):
    result = analyse(make_raster(marks_pdf, fmt=fmt, bits=bits))
    expected = [n for n, page in enumerate(mark_pages(), start=1) if page.color]
    # An RGB raster cannot ask for ink: CMYK rich black arrives as plain RGB black.
    expected.remove(MARKS.index("cmyk-rich-black-shape") + 1)
    assert result.format == FORMATS[fmt]
    assert result.pages == len(MARKS) + 1
    assert result.color_pages == tuple(expected)
    assert result.page_sizes == ("A4",) * (len(MARKS) + 1)


def test_near_neutral_pixels_are_gray_and_pale_colour_is_colour(marks_pdf):
    result = analyse(make_raster(marks_pdf))
    assert MARKS.index("near-gray-shape") + 1 not in result.color_pages  # 145 143 143
    assert MARKS.index("pale-color-shape") + 1 in result.color_pages  # 255 255 217
    assert MARKS.index("tiny-color-mark") + 1 in result.color_pages


@pytest.mark.parametrize(
    ("fmt", "space", "bits"),
    [("pwg", "sgray", 8), ("pwg", "sgray", 16), ("pwg", "black", 1), ("urf", "sgray", 8)],
)
def test_a_gray_colour_space_is_grayscale_whatever_the_page_shows(marks_pdf, fmt, space, bits):
    result = analyse(make_raster(marks_pdf, fmt=fmt, space=space, bits=bits))
    assert (result.pages, result.color_pages) == (len(MARKS) + 1, ())


def test_cmyk_raster_is_colour_where_it_asks_for_coloured_ink():
    pages = [
        Page(marks=("black-text", "devicegray-shape", "cmyk-gray-shape", "gray-image")),
        Page(marks=("cmyk-color-shape",)),
        Page(marks=("cmyk-rich-black-shape",)),
        Page(),
        # RGB gray converted to CMYK by Ghostscript's ICC profiles is printed with all
        # four inks: it is colour on a CMYK printer, as it would cost.
        Page(marks=("gray-shape",)),
    ]
    for fmt in ("pwg", "urf"):
        result = analyse(make_raster(make_pdf_pages(pages), fmt=fmt, space="cmyk"))
        assert result.color_pages == (2, 3, 5)


MIXED_PAPER = [
    (Page(size=A4, marks=("black-text",)), "A4"),
    (Page(size=A3, marks=("color-shape",)), "A3"),
    (Page(size=LETTER), "Letter"),
    (Page(size=(842, 595), marks=("gray-shape",)), "A4"),  # landscape A4
    (Page(size=LEGAL), "Legal"),
    (Page(size=TABLOID, marks=("tiny-color-mark",)), "Tabloid"),
    (Page(size=A5, marks=("color-image",)), "A5"),
    (Page(size=(100 * MM, 150 * MM)), "100x150mm"),
]


@pytest.mark.parametrize("fmt", ["pwg", "urf"])
def test_raster_with_mixed_paper_sizes(fmt):
    # PWG pages carry their size in points; URF pages only in pixels and a resolution.
    document = make_raster(make_pdf_pages(page for page, _ in MIXED_PAPER), fmt=fmt)
    assert analyse(document) == Analysis(
        format=FORMATS[fmt],
        pages=len(MIXED_PAPER),
        color_pages=(2, 6, 7),
        page_sizes=tuple(name for _, name in MIXED_PAPER),
    )


def test_a_300_dpi_page_with_one_coloured_pixel():
    # 2480 pixels of white, one pixel 4% off neutral at x = 1234 on line 2000.
    lines = [white_line(2480)] * 3508
    lines[2000] = white_line(1234) + bytes((255, 245, 255)) + white_line(1245)
    result = analyse(pwg([page_header(2480, 3508, dpi=300)], [lines]))
    assert (result.pages, result.color_pages, result.page_sizes) == (1, (1,), ("A4",))
    lines[2000] = white_line(1234) + bytes((255, 250, 255)) + white_line(1245)  # 2%: gray
    assert analyse(pwg([page_header(2480, 3508, dpi=300)], [lines])).color_pages == ()


def test_repeated_pixels_repeated_lines_and_the_blank_rest_of_a_line_are_read():
    header = page_header(300, 4, dpi=36)
    red_run = bytes((5,)) + bytes((255, 0, 0))  # one red pixel, 6 times
    line = bytes((2,)) + red_run + bytes((128,))  # the line 3 times, the rest blank
    document = PWG + header + line + bytes((0, 128))
    assert analyse(document).color_pages == (1,)


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (b"RaS2", "the PWG raster document has no pages"),
        (b"UNIRAST\0\0\0\0\0", r"the Apple raster \(URF\) document has no pages"),
        (b"UNIRAST\0\0\0", r"the Apple raster \(URF\) document is truncated"),
        (b"RaS2" + b"\0" * 100, "the PWG raster document is truncated"),
        (b"RaS2" + b"\0" * 1796, r"damaged \(a page has no resolution\)"),
    ],
    ids=["pwg-sync-only", "urf-no-pages", "urf-short-header", "pwg-short-header", "zeros"],
)
def test_empty_and_header_only_rasters_are_refused(document, reason):
    with pytest.raises(UnreadableDocument, match=reason):
        analyse(document)


@pytest.mark.parametrize("fmt", ["pwg", "urf"])
def test_every_truncation_inside_a_page_is_refused(fmt):
    pages = [Page(marks=("color-shape", "black-text")), Page(size=A5, marks=("gray-shape",))]
    document = make_raster(make_pdf_pages(pages), fmt=fmt, dpi=20)
    whole = analyse(document)
    assert (whole.pages, whole.color_pages) == (2, (1,))
    boundary = page_boundary(document)
    start = len(b"RaS2") if fmt == "pwg" else raster_module.URF_FILE_HEADER
    for length in range(start + 1, len(document)):
        if length == boundary:
            # Cut exactly after a page: neither format marks its end (Ghostscript writes
            # no URF page count), so only the pages that are there are priced.
            assert analyse(document[:length]).pages == 1
            continue
        with pytest.raises(UnreadableDocument, match=r"truncated|damaged"):
            analyse(document[:length])


def test_urf_that_declares_more_pages_than_it_has_is_refused():
    document = make_raster(make_pdf_pages([Page(), Page()]), fmt="urf", dpi=20)
    declared = document[:8] + struct.pack(">I", 2) + document[12:]
    assert analyse(declared).pages == 2
    with pytest.raises(UnreadableDocument, match=r"truncated \(1 of 2 pages are there\)"):
        analyse(declared[: page_boundary(document)])


def test_random_bytes_after_a_raster_sync_word_are_refused_with_a_reason():
    rng = random.Random(20261124)
    for sync in (b"RaS2", b"UNIRAST\0"):
        for _ in range(50):
            document = sync + rng.randbytes(rng.randrange(0, 4000))
            with pytest.raises(UnreadableDocument) as info:
                analyse(document)
            assert "raster" in str(info.value) and "0x" not in str(info.value)


def test_random_damage_to_a_real_raster_never_leaks_another_error():
    document = make_raster(make_pdf_pages([Page(marks=("color-shape",))] * 2), dpi=20)
    rng = random.Random(7)
    for _ in range(300):
        damaged = bytearray(document)
        for _ in range(rng.randrange(1, 6)):
            damaged[rng.randrange(4, len(damaged))] = rng.randrange(256)
        try:
            result = analyse(bytes(damaged))
        except UnreadableDocument as exc:
            assert str(exc)
        else:
            assert result.pages >= 1


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({400: 48}, r"unsupported colour space \(48\)"),  # Device1: unknown ink
        ({400: 16}, r"unsupported colour space \(16\)"),  # CIE Lab
        ({396: 1}, "unsupported pixel order"),  # banded
        ({384: 12}, r"a page header is not valid"),  # 12 bits a colour
        ({392: 7}, r"a page header is not valid"),  # bytes a line disagree with the width
        ({372: 0}, r"a page header is not valid"),  # no width
    ],
)
def test_pwg_page_headers_that_cannot_be_analysed(change, reason):
    header = bytearray(page_header(8, 2, dpi=72))
    for offset, value in change.items():
        struct.pack_into(">I", header, offset, value)
    document = PWG + bytes(header) + (bytes((1, 128)))
    with pytest.raises(UnreadableDocument, match=reason):
        analyse(document)


def test_a_line_longer_than_the_page_is_damage():
    header = page_header(4, 1, dpi=72)
    with pytest.raises(UnreadableDocument, match=r"damaged \(a line is too long\)"):
        analyse(PWG + header + bytes((0, 9)) + bytes((1, 2, 3)))  # 10 pixels in a 4-pixel line


def test_more_lines_than_the_page_has_is_damage():
    header = page_header(4, 2, dpi=72)
    with pytest.raises(UnreadableDocument, match="damaged"):
        analyse(PWG + header + bytes((2, 128)))  # one line printed 3 times on a 2-line page


def test_a_page_too_large_is_refused_before_reading_it():
    with pytest.raises(UnreadableDocument, match="a page too large to print"):
        analyse(PWG + page_header(100_000, 100_000, dpi=600))


def test_raster_over_the_page_limit_is_refused(monkeypatch):
    monkeypatch.setattr("platen.job_capture.analysis.MAX_PAGES", 3)
    one = page_header(8, 1, dpi=72) + bytes((0, 128))
    assert analyse(PWG + one * 3).pages == 3
    with pytest.raises(UnreadableDocument, match=r"too many pages \(the limit is 3\)"):
        analyse(PWG + one * 4)


def test_a_raster_past_its_deadline_is_refused():
    lines = raster_module.CHECK_DEADLINE_EVERY * 2  # the deadline is checked every so often
    header = page_header(8, lines, dpi=72)
    document = PWG + header + bytes((0, 128)) * lines
    assert analyse(document).pages == 1
    with pytest.raises(UnreadableDocument, match="takes too long to analyse"):
        analyse(document, timeout=0)


# --------------------------------------------------------------------------- helpers

PWG = b"RaS2"


def white_line(pixels: int) -> bytes:
    return b"\xff" * (3 * pixels)


def page_header(width: int, height: int, *, dpi: int, space: int = 19, bits: int = 8) -> bytes:
    """A PWG page header (cups_page_header2_t, big-endian) for 8-bit sRGB by default."""
    header = bytearray(raster_module.PWG_HEADER)
    header[:9] = b"PwgRaster"
    struct.pack_into(">II", header, 276, dpi, dpi)
    struct.pack_into(">II", header, 352, round(width * 72 / dpi), round(height * 72 / dpi))
    bits_per_pixel = bits * (3 if space == 19 else 1)
    struct.pack_into(
        ">8I",
        header,
        372,
        width,
        height,
        0,
        bits,
        bits_per_pixel,
        (width * bits_per_pixel + 7) // 8,
        0,
        space,
    )
    return bytes(header)


def encode_line(line: bytes, unit: int = 3) -> bytes:
    """One line as PWG runs of repeated pixels (Ghostscript's rasters test literal runs)."""
    pixels = [line[i : i + unit] for i in range(0, len(line), unit)]
    out, i = bytearray(), 0
    while i < len(pixels):
        same = 1
        while i + same < len(pixels) and same < 128 and pixels[i + same] == pixels[i]:
            same += 1
        out += bytes((same - 1,)) + pixels[i]
        i += same
    return bytes(out)


def pwg(headers: list[bytes], pages: list[list[bytes]]) -> bytes:
    out = bytearray(PWG)
    for header, lines in zip(headers, pages, strict=True):
        out += header
        n = 0
        while n < len(lines):
            repeat = 1
            while n + repeat < len(lines) and repeat < 256 and lines[n + repeat] == lines[n]:
                repeat += 1
            out += bytes((repeat - 1,)) + encode_line(lines[n])
            n += repeat
    return bytes(out)


def page_boundary(document: bytes) -> int:
    """Where the first page ends: the length of a raster holding only that page."""
    for length in range(len(document) - 1, 0, -1):
        try:
            if analyse(document[:length]).pages == 1:
                return length
        except UnreadableDocument:
            continue
    raise AssertionError("no page boundary")
