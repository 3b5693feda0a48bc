"""Documents with known answers, generated for tests.

`make_pdf` makes blank pages. `make_pdf_pages` and `make_postscript` make one page per
`Page`, each with its own paper size and marks whose colour is known, so a test can say
exactly which pages print in colour and on which paper. `make_raster` renders such a PDF
to PWG or Apple raster with Ghostscript, as CUPS's filters do for IPP Everywhere printers.
"""

from __future__ import annotations

import io
import struct
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import pikepdf
from pikepdf import Array, Dictionary, Name

# The blank-page document is the demo's too (`make run`), so it lives with the stack.
from platen.localstack.demo import make_pdf as make_pdf

# Paper sizes in points (portrait).
A3 = (842.0, 1191.0)
A4 = (595.0, 842.0)
A5 = (420.0, 595.0)
LETTER = (612.0, 792.0)
LEGAL = (612.0, 1008.0)
TABLOID = (792.0, 1224.0)

# What can be drawn on a test page. The comment says how; COLOR_MARKS says which of them
# print in colour.
Mark = Literal[
    "black-text",  # DeviceGray 0
    "rgb-black-text",  # DeviceRGB 0 0 0
    "color-text",  # DeviceRGB blue
    "black-shape",  # DeviceGray 0
    "gray-shape",  # DeviceRGB 0.5 0.5 0.5 (what office software writes for gray)
    "devicegray-shape",  # DeviceGray 0.5
    "cmyk-gray-shape",  # DeviceCMYK 0 0 0 0.5 (black ink only)
    "cmyk-rich-black-shape",  # DeviceCMYK 0.5 0.5 0.5 1: looks black, asks for colour ink
    "icc-gray-shape",  # ICCBased RGB 0.5 0.5 0.5 (Chrome and macOS write every colour so)
    "icc-color-shape",  # ICCBased RGB 0.2 0.4 0.8
    "near-gray-shape",  # DeviceRGB 145 143 143 of 255 (pdftocairo's CMYK 50% black)
    "pale-color-shape",  # DeviceRGB 1 1 0.85: a pale yellow, as for highlighting
    "white-shape",  # DeviceRGB 1 1 1: drawn, but no ink
    "color-shape",  # DeviceRGB red
    "cmyk-color-shape",  # DeviceCMYK cyan
    "tiny-color-mark",  # a 2x2 pt red square, off any pixel grid
    "hairline-color",  # a red line of width 0 (the thinnest the device can draw)
    "color-image",  # a 16x16 RGB image of a colour gradient
    "gray-image",  # a 16x16 DeviceGray image
    "rgb-gray-image",  # a 16x16 RGB image whose pixels are all neutral (R = G = B)
]
MARKS: tuple[Mark, ...] = get_args(Mark)
COLOR_MARKS: frozenset[Mark] = frozenset(
    {
        "color-text",
        "cmyk-rich-black-shape",
        "icc-color-shape",
        "pale-color-shape",
        "color-shape",
        "cmyk-color-shape",
        "tiny-color-mark",
        "hairline-color",
        "color-image",
    }
)


@dataclass(frozen=True)
class Page:
    """One test page: its MediaBox size in points, what is drawn on it, and options.

    `crop` is a CropBox (width, height) from the lower-left corner; `rotate` is /Rotate.
    Both are PDF notions, which `make_postscript` ignores.
    """

    size: tuple[float, float] = A4
    marks: tuple[Mark, ...] = ()
    rotate: int = 0
    crop: tuple[float, float] | None = None

    @property
    def color(self) -> bool:
        return any(mark in COLOR_MARKS for mark in self.marks)


# --------------------------------------------------------------------------- drawing

Space = Literal["gray", "rgb", "cmyk", "icc"]
Box = tuple[float, float, float, float]  # x, y, width, height as fractions of the page

# Filled rectangles: colour, and where on the page (so marks never overlap).
_SHAPES: dict[str, tuple[Space, tuple[float, ...], Box]] = {
    "black-shape": ("gray", (0,), (0.15, 0.15, 0.2, 0.1)),
    "gray-shape": ("rgb", (0.5, 0.5, 0.5), (0.4, 0.15, 0.2, 0.1)),
    "devicegray-shape": ("gray", (0.5,), (0.65, 0.15, 0.2, 0.1)),
    "cmyk-gray-shape": ("cmyk", (0, 0, 0, 0.5), (0.15, 0.3, 0.2, 0.1)),
    "white-shape": ("rgb", (1, 1, 1), (0.4, 0.3, 0.2, 0.1)),
    "color-shape": ("rgb", (1, 0, 0), (0.65, 0.3, 0.2, 0.1)),
    "cmyk-color-shape": ("cmyk", (1, 0, 0, 0), (0.15, 0.45, 0.2, 0.04)),
    "cmyk-rich-black-shape": ("cmyk", (0.5, 0.5, 0.5, 1), (0.15, 0.5, 0.2, 0.04)),
    "icc-gray-shape": ("icc", (0.5, 0.5, 0.5), (0.4, 0.45, 0.2, 0.1)),
    "icc-color-shape": ("icc", (0.2, 0.4, 0.8), (0.65, 0.45, 0.2, 0.1)),
    "near-gray-shape": ("rgb", (145 / 255, 143 / 255, 143 / 255), (0.15, 0.8, 0.2, 0.05)),
    "pale-color-shape": ("rgb", (1, 1, 0.85), (0.65, 0.8, 0.2, 0.05)),
}
_TEXTS: dict[str, tuple[Space, tuple[float, ...], float, str]] = {
    "black-text": ("gray", (0,), 0.9, "Platen: black text"),
    "rgb-black-text": ("rgb", (0, 0, 0), 0.85, "Platen: RGB black text"),
    "color-text": ("rgb", (0, 0, 1), 0.8, "Platen: blue text"),
}
IMAGE_SIDE = 16
_IMAGES: dict[str, tuple[str, float]] = {  # resource name, x (as a fraction of the page)
    "color-image": ("ImColor", 0.15),
    "gray-image": ("ImGray", 0.4),
    "rgb-gray-image": ("ImNeutral", 0.65),
}


def _color_pixels() -> bytes:
    return bytes(
        channel
        for row in range(IMAGE_SIDE)
        for col in range(IMAGE_SIDE)
        for channel in (255 - col * 16, row * 16, 128)
    )


def _gray_pixels() -> bytes:
    return bytes(
        (row * 37 + col * 11) % 256 for row in range(IMAGE_SIDE) for col in range(IMAGE_SIDE)
    )


def _neutral_rgb_pixels() -> bytes:
    return bytes(value for value in _gray_pixels() for _ in range(3))


def _pixels(name: str) -> tuple[bytes, int]:
    return {
        "ImColor": (_color_pixels(), 3),
        "ImGray": (_gray_pixels(), 1),
        "ImNeutral": (_neutral_rgb_pixels(), 3),
    }[name]


def _numbers(values: Iterable[float]) -> str:
    return " ".join(f"{value:g}" for value in values)


def _pdf_color(space: Space, values: tuple[float, ...]) -> str:
    if space == "icc":
        return f"/ICC cs {_numbers(values)} sc"
    return f"{_numbers(values)} {dict(gray='g', rgb='rg', cmyk='k')[space]}"


def _ps_color(space: Space, values: tuple[float, ...]) -> str:
    # PostScript has no ICCBased colour space: ICC marks are drawn as DeviceRGB.
    op = dict(gray="setgray", rgb="setrgbcolor", cmyk="setcmykcolor", icc="setrgbcolor")[space]
    return f"{_numbers(values)} {op}"


def _pdf_mark(mark: Mark, w: float, h: float) -> str:
    if mark in _SHAPES:
        space, values, (fx, fy, fw, fh) = _SHAPES[mark]
        return f"{_pdf_color(space, values)} {_numbers((fx * w, fy * h, fw * w, fh * h))} re f"
    if mark in _TEXTS:
        space, values, fy, text = _TEXTS[mark]
        where = _numbers((0.15 * w, fy * h))
        return f"{_pdf_color(space, values)} BT /F1 14 Tf {where} Td ({text}) Tj ET"
    if mark in _IMAGES:
        name, fx = _IMAGES[mark]
        matrix = _numbers((0.2 * w, 0, 0, 0.1 * h, fx * w, 0.65 * h))
        return f"q {matrix} cm /{name} Do Q"
    if mark == "tiny-color-mark":
        return f"1 0 0 rg {_numbers((w * 0.5 + 0.37, h * 0.5 + 0.61))} 2 2 re f"
    if mark == "hairline-color":
        return f"1 0 0 RG 0 w {_numbers((0.1 * w, 0.6 * h))} m {_numbers((0.9 * w, 0.6 * h))} l S"
    raise ValueError(f"unknown mark {mark!r}")


def _ps_mark(mark: Mark, w: float, h: float) -> str:
    if mark in _SHAPES:
        space, values, (fx, fy, fw, fh) = _SHAPES[mark]
        return f"{_ps_color(space, values)} {_numbers((fx * w, fy * h, fw * w, fh * h))} rectfill"
    if mark in _TEXTS:
        space, values, fy, text = _TEXTS[mark]
        return (
            f"{_ps_color(space, values)} /Helvetica findfont 14 scalefont setfont"
            f" {_numbers((0.15 * w, fy * h))} moveto ({text}) show"
        )
    if mark in _IMAGES:
        name, fx = _IMAGES[mark]
        data, components = _pixels(name)
        return (
            f"gsave {_numbers((fx * w, 0.65 * h))} translate {_numbers((0.2 * w, 0.1 * h))} scale"
            f" /Device{'RGB' if components == 3 else 'Gray'} setcolorspace"
            f" << /ImageType 1 /Width {IMAGE_SIDE} /Height {IMAGE_SIDE} /BitsPerComponent 8"
            f" /Decode [{' '.join(['0 1'] * components)}]"
            f" /ImageMatrix [{IMAGE_SIDE} 0 0 {IMAGE_SIDE} 0 0]"
            f" /DataSource <{data.hex()}> >> image grestore"
        )
    if mark == "tiny-color-mark":
        return f"1 0 0 setrgbcolor {_numbers((w * 0.5 + 0.37, h * 0.5 + 0.61))} 2 2 rectfill"
    if mark == "hairline-color":
        return (
            f"1 0 0 setrgbcolor 0 setlinewidth newpath {_numbers((0.1 * w, 0.6 * h))} moveto"
            f" {_numbers((0.9 * w, 0.6 * h))} lineto stroke"
        )
    raise ValueError(f"unknown mark {mark!r}")


def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def _xyz(x: float, y: float, z: float) -> bytes:
    return b"XYZ \0\0\0\0" + _s15(x) + _s15(y) + _s15(z)


def rgb_icc_profile() -> bytes:
    """A minimal, valid ICC v2 RGB display profile (sRGB primaries, gamma 2.2).

    Real-world PDFs (Chrome, macOS) draw in ICCBased colour spaces; this lets tests do the
    same without shipping a profile file.
    """
    description = b"Platen test RGB"
    trc = b"curv\0\0\0\0" + struct.pack(">IH", 1, round(2.2 * 256)) + b"\0\0"
    tags = {
        b"desc": b"desc\0\0\0\0"
        + struct.pack(">I", len(description) + 1)
        + description
        + b"\0"
        + b"\0" * 8  # Unicode language code and count
        + b"\0" * 3  # ScriptCode code and count
        + b"\0" * 67,  # ScriptCode description
        b"wtpt": _xyz(0.9642, 1.0, 0.8249),
        b"rXYZ": _xyz(0.4361, 0.2225, 0.0139),
        b"gXYZ": _xyz(0.3851, 0.7169, 0.0971),
        b"bXYZ": _xyz(0.1431, 0.0606, 0.7141),
        b"rTRC": trc,
        b"gTRC": trc,
        b"bTRC": trc,
        b"cprt": b"text\0\0\0\0No copyright, test data\0",
    }
    data_start = 128 + 4 + 12 * len(tags)
    entries, data = [], b""
    for signature, body in tags.items():
        entries.append(struct.pack(">4sII", signature, data_start + len(data), len(body)))
        data += body + b"\0" * (-len(body) % 4)
    header = (
        struct.pack(
            ">I4sI4s4s4s", data_start + len(data), b"\0" * 4, 0x02100000, b"mntr", b"RGB ", b"XYZ "
        )
        + b"\0" * 12  # creation date
        + b"acsp"
        + b"\0" * 24  # platform, flags, manufacturer, model, attributes
        + struct.pack(">I", 0)  # perceptual rendering intent
        + _xyz(0.9642, 1.0, 0.8249)[8:]  # the D50 illuminant
        + b"\0" * 48  # creator, profile id, reserved
    )
    return header + struct.pack(">I", len(tags)) + b"".join(entries) + data


def _image(pdf: pikepdf.Pdf, name: str) -> pikepdf.Object:
    data, components = _pixels(name)
    return pdf.make_indirect(
        pikepdf.Stream(
            pdf,
            data,
            Type=Name.XObject,
            Subtype=Name.Image,
            Width=IMAGE_SIDE,
            Height=IMAGE_SIDE,
            ColorSpace=Name.DeviceRGB if components == 3 else Name.DeviceGray,
            BitsPerComponent=8,
        )
    )


def make_pdf_pages(pages: Iterable[Page]) -> bytes:
    """A PDF with one page per `Page`, drawn with plain content-stream operators."""
    pdf = pikepdf.new()
    font = Dictionary(Type=Name.Font, Subtype=Name.Type1, BaseFont=Name.Helvetica)
    icc = pikepdf.Stream(pdf, rgb_icc_profile(), N=3)
    resources = pdf.make_indirect(
        Dictionary(
            Font=Dictionary(F1=pdf.make_indirect(font)),
            XObject=Dictionary({f"/{name}": _image(pdf, name) for name, _ in _IMAGES.values()}),
            ColorSpace=Dictionary(ICC=Array([Name.ICCBased, pdf.make_indirect(icc)])),
        )
    )
    # Pages that look alike share one content stream, which keeps long documents small.
    streams: dict[tuple[tuple[float, float], tuple[Mark, ...]], pikepdf.Object] = {}
    for spec in pages:
        w, h = spec.size
        page = Dictionary(Type=Name.Page, MediaBox=Array([0, 0, w, h]), Resources=resources)
        if spec.marks:  # a white page has no content stream, like pikepdf's blank pages
            key = (spec.size, spec.marks)
            if key not in streams:
                ops = "\n".join(_pdf_mark(mark, w, h) for mark in spec.marks)
                streams[key] = pdf.make_indirect(pikepdf.Stream(pdf, ops.encode()))
            page.Contents = streams[key]
        if spec.rotate:
            page.Rotate = spec.rotate
        if spec.crop:
            page.CropBox = Array([0, 0, *spec.crop])
        pdf.pages.append(pikepdf.Page(page))
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def make_postscript(pages: Sequence[Page]) -> bytes:
    """A small DSC-conforming PostScript program with one page per `Page`.

    Each page sets its own /PageSize, as print drivers do.
    """
    lines = [
        "%!PS-Adobe-3.0",
        "%%Creator: platen.testing.documents",
        f"%%Pages: {len(pages)}",
        "%%EndComments",
    ]
    for number, spec in enumerate(pages, start=1):
        w, h = spec.size
        lines += [
            f"%%Page: {number} {number}",
            f"<< /PageSize [{_numbers((w, h))}] >> setpagedevice",
            "save",
            *(_ps_mark(mark, w, h) for mark in spec.marks),
            "restore showpage",
        ]
    lines += ["%%EOF", ""]
    return "\n".join(lines).encode()


# cupsColorSpace numbers Ghostscript's raster devices take.
RASTER_SPACES = {"srgb": 19, "sgray": 18, "black": 3, "cmyk": 6}


def make_raster(
    pdf: bytes,
    *,
    fmt: Literal["pwg", "urf"] = "pwg",
    space: Literal["srgb", "sgray", "black", "cmyk"] = "srgb",
    bits: int = 8,
    dpi: int = 100,
) -> bytes:
    """`pdf` rendered by Ghostscript's `pwgraster` or `appleraster` device, page by page."""
    device = "pwgraster" if fmt == "pwg" else "appleraster"
    return subprocess.run(
        [
            "gs",
            "-q",
            "-dSAFER",
            "-dBATCH",
            "-dNOPAUSE",
            f"-sDEVICE={device}",
            f"-r{dpi}",
            f"-dcupsColorSpace={RASTER_SPACES[space]}",
            f"-dcupsBitsPerColor={bits}",
            "-sOutputFile=%stdout",
            "-",
        ],
        input=pdf,
        capture_output=True,
        check=True,
    ).stdout


def make_device_detecting_postscript(*, analysed: int = 1, printed: int = 20) -> bytes:
    """A hostile PostScript program: `analysed` pages when it runs on Ghostscript's ink
    coverage device (how job-capture analyses PostScript), `printed` colour pages on any
    other device (a printer, or a converter). It has no DSC page count, so that nothing
    but running it tells how many pages it prints."""
    return (
        "%!PS\n"
        "/platen-analysed? currentpagedevice /OutputDevice known\n"
        "  { currentpagedevice /OutputDevice get /ink_cov eq } { false } ifelse def\n"
        f"platen-analysed? {{ {analysed} }} {{ {printed} }} ifelse {{\n"
        "  << /PageSize [595 842] >> setpagedevice\n"
        "  1 0 0 setrgbcolor 100 100 200 200 rectfill showpage\n"
        "} repeat\n"
    ).encode()
