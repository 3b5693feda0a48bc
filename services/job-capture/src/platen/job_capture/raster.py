"""What a PWG raster or Apple raster (URF) document prints, page by page.

These are what CUPS's filters send an IPP Everywhere printer that does not take PDF:
pages already rendered to pixels, each line compressed with a line-repeat count and
PackBits-like runs. Both layouts are fixed (PWG 5102.4; URF is its Apple cousin), so the
page headers are read with `struct` and the runs are walked here.

Why not CUPS's own `rastertopdf` and then the PDF path: it pads a truncated page with
blank lines and exits 0, so a cut document would be priced as if whole; and turning every
page into a deflated PDF image only to inflate it again costs more than the walk (see
bench/README.md). Walking the runs also means each distinct pixel is looked at once: a
run of repeated pixels and a repeated line are checked once, not once per copy.

Pure: bytes in, pages out. `RasterError` carries a reason fit for the user.
"""

from __future__ import annotations

import math
import struct
import time
from dataclasses import dataclass
from typing import Literal

from PIL import Image

PWG_SYNC = b"RaS2"  # CUPS raster version 2, big-endian: what PWG raster is
URF_SYNC = b"UNIRAST\0"
PWG_HEADER = 1796
URF_FILE_HEADER = 12  # the sync word and a page count (0 when the writer streamed)
URF_PAGE_HEADER = 32
# One page at most this many pixels: A3 at 1200 dpi is 140 million.
MAX_PAGE_PIXELS = 200_000_000
FILL_REST_OF_LINE = 128  # a run header that leaves the rest of the line blank (white)
CHECK_DEADLINE_EVERY = 256  # lines

Space = Literal["gray", "rgb", "cmyk"]

# cupsColorSpace values a PWG page may use, by what they print. Device-N spaces (48-62)
# and anything else are inks Platen cannot tell the colour of, so they are refused.
PWG_SPACES: dict[int, Space] = {
    0: "gray",  # W
    3: "gray",  # K (black)
    18: "gray",  # sGray
    1: "rgb",  # RGB
    19: "rgb",  # sRGB
    20: "rgb",  # Adobe RGB
    6: "cmyk",
}
# URF colour spaces (0 sGray, 1 sRGB, 2 CIELab, 3 Adobe RGB, 4 gray, 5 RGB, 6 CMYK).
# CIELab is refused: its neutral is a = b = 0, which the RGB rule below would not see.
URF_SPACES: dict[int, Space] = {0: "gray", 4: "gray", 1: "rgb", 3: "rgb", 5: "rgb", 6: "cmyk"}
CHANNELS = {"gray": 1, "rgb": 3, "cmyk": 4}

# Pixels are checked in an image this wide; the last row is padded with white.
CHECK_WIDTH = 4096


class RasterError(ValueError):
    """The raster cannot be analysed; the message is the reason shown to the user."""


@dataclass(frozen=True)
class RasterPage:
    """One page: its size in points, its colour space, and whether it prints in colour."""

    width_pt: float
    height_pt: float
    space: Space
    color: bool


@dataclass(frozen=True)
class _Layout:
    """How one page's pixels are stored."""

    width: int  # pixels
    height: int  # lines
    bits_per_color: int
    bits_per_pixel: int
    bytes_per_line: int
    space: Space
    width_pt: float
    height_pt: float

    @property
    def unit(self) -> int:
        """Bytes per run unit: one pixel, or one byte when pixels are smaller."""
        return max(1, self.bits_per_pixel // 8)


def raster_format(document: bytes) -> Literal["pwg-raster", "urf"] | None:
    if document.startswith(PWG_SYNC):
        return "pwg-raster"
    if document.startswith(URF_SYNC):
        return "urf"
    return None


def read_raster(
    document: bytes, *, tolerance: float, max_pages: int, deadline: float
) -> list[RasterPage]:
    """Every page of a PWG or URF raster; RasterError if it is not whole and valid.

    A gray page is grayscale. An RGB page is colour if any pixel's channels differ by
    more than `tolerance` (a fraction of full scale), a CMYK page if any pixel asks for
    more than `tolerance` cyan, magenta or yellow: the "any non-neutral ink" rule of the
    PDF path, pixel by pixel.
    """
    fmt = raster_format(document)
    if fmt is None:
        raise RasterError("the document is not PWG or Apple raster")
    name = "PWG raster" if fmt == "pwg-raster" else "Apple raster (URF)"
    if fmt == "pwg-raster":
        position, declared = len(PWG_SYNC), 0
    else:
        if len(document) < URF_FILE_HEADER:
            raise RasterError(f"the {name} document is truncated")
        position = URF_FILE_HEADER
        (declared,) = struct.unpack_from(">I", document, len(URF_SYNC))
    pages: list[RasterPage] = []
    while position < len(document):
        if len(pages) >= max_pages:
            raise RasterError(f"the {name} document has too many pages (the limit is {max_pages})")
        if fmt == "pwg-raster":
            layout, position = _pwg_header(document, position, name)
        else:
            layout, position = _urf_header(document, position, name)
        position, samples = _walk_page(document, position, layout, name, deadline)
        color = layout.space != "gray" and not _neutral(samples, layout, tolerance)
        pages.append(RasterPage(layout.width_pt, layout.height_pt, layout.space, color))
    if not pages:
        raise RasterError(f"the {name} document has no pages")
    if declared and declared != len(pages):
        raise RasterError(
            f"the {name} document is truncated ({len(pages)} of {declared} pages are there)"
        )
    return pages


# --------------------------------------------------------------------------- page headers


def _pwg_header(document: bytes, at: int, name: str) -> tuple[_Layout, int]:
    """The layout of the page whose header is at `at`, and where its pixels start."""
    if at + PWG_HEADER > len(document):
        raise RasterError(f"the {name} document is truncated")
    # Offsets in cups_page_header2_t, all fields big-endian unsigned 32-bit integers.
    x_dpi, y_dpi = struct.unpack_from(">II", document, at + 276)
    page_w, page_h = struct.unpack_from(">II", document, at + 352)
    width, height, _, bits_per_color, bits_per_pixel, bytes_per_line, order, space = (
        struct.unpack_from(">8I", document, at + 372)
    )
    if order != 0:  # banded or planar: not allowed in PWG raster
        raise RasterError(f"the {name} document uses an unsupported pixel order")
    if space not in PWG_SPACES:
        raise RasterError(f"the {name} document uses an unsupported colour space ({space})")
    kind = PWG_SPACES[space]
    if not x_dpi or not y_dpi:
        raise RasterError(f"the {name} document is damaged (a page has no resolution)")
    if not page_w or not page_h:  # not required by CUPS raster: the pixels tell
        page_w, page_h = width * 72 / x_dpi, height * 72 / y_dpi
    layout = _Layout(
        width, height, bits_per_color, bits_per_pixel, bytes_per_line, kind, page_w, page_h
    )
    return _checked(layout, name), at + PWG_HEADER


def _urf_header(document: bytes, at: int, name: str) -> tuple[_Layout, int]:
    # Bits per pixel, colour space, duplex, quality, 8 reserved bytes, then width,
    # height and resolution as big-endian 32-bit integers; URF has no page size.
    if at + URF_PAGE_HEADER > len(document):
        raise RasterError(f"the {name} document is truncated")
    bits_per_pixel, space = document[at], document[at + 1]
    if bits_per_pixel % 8:  # URF pixels are whole bytes (8 or 16 bits a channel)
        raise RasterError(f"the {name} document is damaged (a page header is not valid)")
    width, height, dpi = struct.unpack_from(">III", document, at + 12)
    if space not in URF_SPACES:
        raise RasterError(f"the {name} document uses an unsupported colour space ({space})")
    if not dpi:
        raise RasterError(f"the {name} document is damaged (a page has no resolution)")
    kind = URF_SPACES[space]
    layout = _Layout(
        width,
        height,
        bits_per_pixel // CHANNELS[kind],
        bits_per_pixel,
        width * bits_per_pixel // 8,
        kind,
        width * 72 / dpi,
        height * 72 / dpi,
    )
    return _checked(layout, name), at + URF_PAGE_HEADER


def _checked(layout: _Layout, name: str) -> _Layout:
    channels = CHANNELS[layout.space]
    allowed = (1, 2, 4, 8, 16) if layout.space == "gray" else (8, 16)
    if (
        layout.width < 1
        or layout.height < 1
        or layout.bits_per_color not in allowed
        or layout.bits_per_pixel != layout.bits_per_color * channels
        or layout.bytes_per_line != math.ceil(layout.width * layout.bits_per_pixel / 8)
    ):
        raise RasterError(f"the {name} document is damaged (a page header is not valid)")
    if layout.width * layout.height > MAX_PAGE_PIXELS:
        raise RasterError(f"the {name} document has a page too large to print")
    return layout


# --------------------------------------------------------------------------- pixels


def _walk_page(
    document: bytes, position: int, layout: _Layout, name: str, deadline: float
) -> tuple[int, bytes]:
    """Walk one page's lines from `position`: where they end, and the distinct pixels.

    Each line is a repeat count (the line prints count + 1 times), then runs until the
    line is full: a header n < 128 repeats the next pixel n + 1 times, n > 128 is
    followed by 257 - n pixels as they are, 128 leaves the rest of the line blank. A
    repeated pixel is kept once, so the samples are at most the document's own size.
    Gray pages need no samples: their lines are only checked to be whole.
    """
    unit = layout.unit
    units_per_line = layout.bytes_per_line // unit
    keep = layout.space != "gray"
    samples: list[bytes] = []
    size = len(document)
    line = 0
    lines_walked = 0
    try:
        while line < layout.height:
            line += document[position] + 1
            position += 1
            filled = 0
            while filled < units_per_line:
                count = document[position]
                position += 1
                if count == FILL_REST_OF_LINE:
                    break
                if count < FILL_REST_OF_LINE:
                    filled += count + 1
                    if keep:
                        samples.append(document[position : position + unit])
                    position += unit
                else:
                    filled += 257 - count
                    if keep:
                        samples.append(document[position : position + (257 - count) * unit])
                    position += (257 - count) * unit
            if position > size:
                raise IndexError
            if filled > units_per_line or line > layout.height:
                raise RasterError(f"the {name} document is damaged (a line is too long)")
            lines_walked += 1
            if lines_walked % CHECK_DEADLINE_EVERY == 0 and time.monotonic() > deadline:
                raise TimeoutError
    except IndexError:
        raise RasterError(f"the {name} document is truncated") from None
    return position, b"".join(samples)


def _neutral(samples: bytes, layout: _Layout, tolerance: float) -> bool:
    """Whether every pixel in `samples` is neutral (see `read_raster`)."""
    if layout.bits_per_color == 16:  # the high byte of each sample is precise enough
        samples = samples[::2]
    channels = CHANNELS[layout.space]
    pixels = len(samples) // channels
    if not pixels:
        return True
    limit = math.floor(tolerance * 255)
    rows = math.ceil(pixels / CHECK_WIDTH)
    if layout.space == "rgb":
        padding = b"\xff" * ((rows * CHECK_WIDTH - pixels) * channels)
        image = Image.frombytes("RGB", (CHECK_WIDTH, rows), samples + padding)
        # R - G, G - B and R - B, each offset by 128 (and clipped to 0..255, which only
        # happens far beyond the tolerance): neutral when all stay near 128.
        spread = image.convert("RGB", (1, -1, 0, 128, 0, 1, -1, 128, 1, 0, -1, 128))
        return all(128 - limit <= low and high <= 128 + limit for low, high in spread.getextrema())
    padding = b"\0" * ((rows * CHECK_WIDTH - pixels) * channels)  # CMYK white: no ink
    image = Image.frombytes("CMYK", (CHECK_WIDTH, rows), samples + padding)
    cyan, magenta, yellow, _ = image.getextrema()
    return max(cyan[1], magenta[1], yellow[1]) <= limit
