"""Separation and DeviceN colour spaces named after a process ink cannot hide colour.

`ink_cov` has Cyan, Magenta, Yellow and Black colorants, so Ghostscript painted a space
that names one of them in that ink and never used its alternate, which an RGB printer
prints: `[/Separation /Black /DeviceRGB {red}]` was analysed as black ink and printed red.
Each attack below is one page whose only mark is red that way, in PDF and in PostScript,
and must be a colour page, in `gs` started per document and in the resident libgs the
analysis workers use; the plainest was colour-blind before (`..._was_colour_blind...`).
Spot colours used as they are meant keep their answers. Real Ghostscript throughout.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable

import pikepdf
import pytest
from pikepdf import Array, Dictionary, Name
from PIL import Image

from platen.job_capture import analysis
from platen.job_capture.analysis import (
    UnreadableDocument,
    analyse,
    ghostscript_setup,
)
from platen.job_capture.isolation import IsolatedAnalyser, Limits
from platen.job_capture.separations import GUARDED_OPERATORS
from platen.testing.documents import Page, make_postscript

from . import ghostscript_helpers
from .test_api_postscript import red_pixels_as_printed

# --------------------------------------------------------------------------- PDF

Resources = Callable[[pikepdf.Pdf], Dictionary]


def red(pdf: pikepdf.Pdf, inputs: int = 1) -> pikepdf.Object:
    """A tint transform from `inputs` tints to red in DeviceRGB, whatever the tints."""
    if inputs == 1:
        return Dictionary(FunctionType=2, Domain=[0, 1], C0=[1, 0, 0], C1=[1, 0, 0], N=1)
    return pdf.make_indirect(
        pikepdf.Stream(
            pdf,
            b"{" + b"pop " * inputs + b"1 0 0}",
            FunctionType=4,
            Domain=[0, 1] * inputs,
            Range=[0, 1, 0, 1, 0, 1],
        )
    )


def separation(pdf: pikepdf.Pdf, name: str = "/Black") -> Array:
    return Array([Name.Separation, Name(name), Name.DeviceRGB, red(pdf)])


def device_n(pdf: pikepdf.Pdf, *names: str, attributes: Dictionary | None = None) -> Array:
    space = [Name.DeviceN, Array([Name(n) for n in names]), Name.DeviceRGB, red(pdf, len(names))]
    return Array([*space, attributes] if attributes is not None else space)


def a4_page(
    pdf: pikepdf.Pdf, contents: pikepdf.Stream, resources: Dictionary | None = None
) -> pikepdf.Page:
    """An A4 page of `pdf`, appended, drawn by `contents`."""
    page = Dictionary(
        Type=Name.Page,
        MediaBox=[0, 0, 595, 842],
        Contents=pdf.make_indirect(contents),
        Resources=resources if resources is not None else Dictionary(),
    )
    pdf.pages.append(pikepdf.Page(page))
    return pdf.pages[-1]


def saved(pdf: pikepdf.Pdf) -> bytes:
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def one_page(content: bytes, resources: Resources | None = None) -> bytes:
    pdf = pikepdf.new()
    a4_page(pdf, pikepdf.Stream(pdf, content), resources(pdf) if resources is not None else None)
    return saved(pdf)


def with_space(space: Callable[[pikepdf.Pdf], Array]) -> Resources:
    return lambda pdf: Dictionary(ColorSpace=Dictionary(CS0=space(pdf)))


FILL = b"/CS0 cs 1 scn 100 100 200 200 re f"


def form(pdf: pikepdf.Pdf, content: bytes, space: Array, **extra: object) -> pikepdf.Stream:
    return pdf.make_indirect(
        pikepdf.Stream(
            pdf,
            content,
            Type=Name.XObject,
            Subtype=Name.Form,
            BBox=[0, 0, 595, 842],
            Resources=Dictionary(ColorSpace=Dictionary(CS0=space)),
            **extra,
        )
    )


def image(
    pdf: pikepdf.Pdf, space: Array | Name, samples: bytes = b"\xff", **extra: object
) -> pikepdf.Stream:
    """A 1 x 1 image XObject in `space`."""
    return pdf.make_indirect(
        pikepdf.Stream(
            pdf,
            samples,
            **extra,
            Type=Name.XObject,
            Subtype=Name.Image,
            Width=1,
            Height=1,
            BitsPerComponent=8,
            ColorSpace=space,
        )
    )


def axial(pdf: pikepdf.Pdf, space: Array) -> Dictionary:
    return Dictionary(
        ShadingType=2,
        ColorSpace=space,
        Coords=[0, 0, 595, 0],
        Function=Dictionary(FunctionType=2, Domain=[0, 1], C0=[1], C1=[1], N=1),
        Extend=[True, True],
    )


def type3_font(pdf: pikepdf.Pdf) -> Dictionary:
    glyph = pdf.make_indirect(pikepdf.Stream(pdf, b"1000 0 d0 /CS0 cs 1 scn 0 0 800 800 re f"))
    return Dictionary(
        Type=Name.Font,
        Subtype=Name.Type3,
        FontBBox=[0, 0, 1000, 1000],
        FontMatrix=[0.001, 0, 0, 0.001, 0, 0],
        CharProcs=Dictionary(square=glyph),
        Encoding=Dictionary(Type=Name.Encoding, Differences=[65, Name.square]),
        FirstChar=65,
        LastChar=65,
        Widths=[1000],
        Resources=Dictionary(ColorSpace=Dictionary(CS0=separation(pdf))),
    )


def annotation(pdf: pikepdf.Pdf) -> Dictionary:
    appearance = form(pdf, FILL, separation(pdf))
    return pdf.make_indirect(
        Dictionary(
            Type=Name.Annot,
            Subtype=Name.Square,
            Rect=[0, 0, 595, 842],
            F=4,  # printed
            AP=Dictionary(N=appearance),
        )
    )


def tiling(
    pdf: pikepdf.Pdf, cell: bytes, paint_type: int, resources: Dictionary, **extra: object
) -> pikepdf.Stream:
    """A tiling pattern whose 10 x 10 cell is drawn by `cell` (PaintType 1: coloured by
    the cell, 2: uncoloured, in the colour it is used with)."""
    return pdf.make_indirect(
        pikepdf.Stream(
            pdf,
            cell,
            PatternType=1,
            PaintType=paint_type,
            TilingType=1,
            BBox=[0, 0, 10, 10],
            XStep=10,
            YStep=10,
            Resources=resources,
            **extra,
        )
    )


PATTERN_FILL = b"/Pattern cs /P0 scn 100 100 200 200 re f"


def inline_image(space: bytes) -> bytes:
    return b"q 200 0 0 200 100 100 cm BI /W 1 /H 1 /BPC 8 /CS " + space + b" ID \xff EI Q"


INLINE_RED = b"<< /FunctionType 2 /Domain [0 1] /C0 [1 0 0] /C1 [1 0 0] /N 1 >>"


def encoded(data: bytes, filter: Name) -> bytes:
    """`data` as the samples of a one-row gray image in DCT (JPEG, quality 100) or JPX
    (lossless JPEG 2000): each decodes to `data` exactly, which is what a content stream
    behind such a filter needs."""
    image = Image.frombytes("L", (len(data), 1), data)
    out = io.BytesIO()
    if filter == Name.DCTDecode:
        image.save(out, "JPEG", quality=100)
    else:
        image.save(out, "JPEG2000", irreversible=False)
    assert Image.open(io.BytesIO(out.getvalue())).tobytes() == data
    return out.getvalue()


INLINE_SPOT = inline_image(b"[/Separation /Black /DeviceRGB " + INLINE_RED + b"]")


def page_encoded(content: bytes, filter: Name, **extra: object) -> bytes:
    """One page whose content stream is behind `filter` (and has `extra` entries)."""
    pdf = pikepdf.new()
    a4_page(pdf, pikepdf.Stream(pdf, encoded(content, filter), Filter=filter, **extra))
    return saved(pdf)


def form_encoded(content: bytes, filter: Name) -> bytes:
    """One page that draws a form XObject whose stream is behind `filter`."""
    return one_page(
        b"/Fm0 Do",
        lambda pdf: Dictionary(
            XObject=Dictionary(
                Fm0=pdf.make_indirect(
                    pikepdf.Stream(
                        pdf,
                        encoded(content, filter),
                        Filter=filter,
                        Type=Name.XObject,
                        Subtype=Name.Form,
                        BBox=[0, 0, 595, 842],
                        Resources=Dictionary(),
                    )
                )
            )
        ),
    )


# A tiling pattern's cell: the inline image filling its 10 x 10 box.
PATTERN_CELL = (
    b"q 10 0 0 10 0 0 cm BI /W 1 /H 1 /BPC 8 /CS [/Separation /Black /DeviceRGB "
    + INLINE_RED
    + b"] ID \xff EI Q"
)
AS_AN_IMAGE = {"Subtype": Name.Image, "Width": 1, "Height": 1, "BitsPerComponent": 8}


def annotated_page() -> bytes:
    """A blank page with a printed annotation whose appearance is in the spot colour."""
    pdf = pikepdf.new()
    page = a4_page(pdf, pikepdf.Stream(pdf, b""))
    holder = annotation(pdf)
    holder.P = page.obj
    page.obj.Annots = Array([holder])
    return saved(pdf)


PDF_ATTACKS: dict[str, Callable[[], bytes]] = {
    "fill": lambda: one_page(FILL, with_space(separation)),
    "stroke": lambda: one_page(b"/CS0 CS 1 SCN 20 w 100 100 200 200 re S", with_space(separation)),
    "text": lambda: one_page(
        b"BT /CS0 cs 1 scn /F1 96 Tf 100 300 Td (HIDDEN) Tj ET",
        lambda pdf: Dictionary(
            ColorSpace=Dictionary(CS0=separation(pdf)),
            Font=Dictionary(
                F1=Dictionary(Type=Name.Font, Subtype=Name.Type1, BaseFont=Name.Helvetica)
            ),
        ),
    ),
    "DeviceN, black and none": lambda: one_page(
        b"/CS0 cs 1 0 scn 100 100 200 200 re f",
        with_space(lambda pdf: device_n(pdf, "/Black", "/None")),
    ),
    "DeviceN, all none": lambda: one_page(FILL, with_space(lambda pdf: device_n(pdf, "/None"))),
    "DeviceN, a name Ghostscript takes for None": lambda: one_page(
        FILL, with_space(lambda pdf: device_n(pdf, "/N"))
    ),
    "NChannel": lambda: one_page(
        FILL,
        with_space(
            lambda pdf: device_n(
                pdf,
                "/Black",
                attributes=Dictionary(
                    Subtype=Name.NChannel,
                    Process=Dictionary(
                        ColorSpace=Name.DeviceCMYK,
                        Components=[Name.Cyan, Name.Magenta, Name.Yellow, Name.Black],
                    ),
                    Colorants=Dictionary(Black=separation(pdf)),
                ),
            )
        ),
    ),
    "indirect colorant name": lambda: one_page(
        FILL,
        with_space(
            lambda pdf: Array(
                [Name.Separation, pdf.make_indirect(Name.Black), Name.DeviceRGB, red(pdf)]
            )
        ),
    ),
    "image": lambda: one_page(
        b"q 200 0 0 200 100 100 cm /Im0 Do Q",
        lambda pdf: Dictionary(XObject=Dictionary(Im0=image(pdf, separation(pdf)))),
    ),
    "indexed image": lambda: one_page(
        b"q 200 0 0 200 100 100 cm /Im0 Do Q",
        lambda pdf: Dictionary(
            XObject=Dictionary(
                Im0=image(pdf, Array([Name.Indexed, separation(pdf), 255, b"\xff" * 256]))
            )
        ),
    ),
    "inline image": lambda: one_page(
        inline_image(b"[/Separation /Black /DeviceRGB " + INLINE_RED + b"]")
    ),
    # qpdf and Ghostscript read damaged content differently: the bytes are searched.
    "inline image without EI": lambda: one_page(
        b"q 200 0 0 200 100 100 cm BI /W 1 /H 1 /BPC 8 /CS [/Separation /Black /DeviceRGB "
        + INLINE_RED
        + b"] ID \xff"
    ),
    "inline image after a stray <<": lambda: one_page(
        b"<< " + inline_image(b"[/Separation /Black /DeviceRGB " + INLINE_RED + b"]")
    ),
    "inline image, escaped names and a comment": lambda: one_page(
        inline_image(b"[/Sep#61ration %hidden\n/Bl#61ck /DeviceRGB " + INLINE_RED + b"]")
    ),
    "inline image, DeviceN with the empty name": lambda: one_page(
        inline_image(b"[/DeviceN [/] /DeviceRGB " + INLINE_RED + b"]")
    ),
    "inline image, named space": lambda: one_page(inline_image(b"/CS0"), with_space(separation)),
    # An inline image's colour space is in its dictionary, before its data: its own filter
    # changes nothing. A content stream behind an image's filter is run as content.
    "inline image behind DCTDecode": lambda: one_page(
        b"q 200 0 0 200 100 100 cm BI /W 1 /H 1 /BPC 8 /CS [/Separation /Black /DeviceRGB "
        + INLINE_RED
        + b"] /F /DCT ID "
        + encoded(b"\xff", Name.DCTDecode)
        + b" EI Q"
    ),
    "content behind DCTDecode": lambda: page_encoded(INLINE_SPOT, Name.DCTDecode),
    "content behind DCTDecode, said to be an image": lambda: page_encoded(
        INLINE_SPOT, Name.DCTDecode, **AS_AN_IMAGE
    ),
    "form XObject behind DCTDecode": lambda: form_encoded(INLINE_SPOT, Name.DCTDecode),
    "tiling pattern behind DCTDecode, said to be an image": lambda: one_page(
        PATTERN_FILL,
        lambda pdf: Dictionary(
            Pattern=Dictionary(
                P0=tiling(
                    pdf,
                    encoded(PATTERN_CELL, Name.DCTDecode),
                    1,
                    Dictionary(),
                    Filter=Name.DCTDecode,
                    **AS_AN_IMAGE,
                )
            )
        ),
    ),
    "shading (sh)": lambda: one_page(
        b"q 100 100 200 200 re W n /Sh0 sh Q",
        lambda pdf: Dictionary(Shading=Dictionary(Sh0=axial(pdf, separation(pdf)))),
    ),
    "shading pattern": lambda: one_page(
        PATTERN_FILL,
        lambda pdf: Dictionary(
            Pattern=Dictionary(
                P0=pdf.make_indirect(Dictionary(PatternType=2, Shading=axial(pdf, separation(pdf))))
            )
        ),
    ),
    "tiling pattern": lambda: one_page(
        PATTERN_FILL,
        lambda pdf: Dictionary(
            Pattern=Dictionary(
                P0=tiling(
                    pdf,
                    b"/CS0 cs 1 scn 0 0 10 10 re f",
                    1,
                    Dictionary(ColorSpace=Dictionary(CS0=separation(pdf))),
                )
            )
        ),
    ),
    "uncoloured tiling pattern": lambda: one_page(
        b"/PCS cs 1 /P0 scn 100 100 200 200 re f",
        lambda pdf: Dictionary(
            ColorSpace=Dictionary(PCS=Array([Name.Pattern, separation(pdf)])),
            Pattern=Dictionary(P0=tiling(pdf, b"0 0 10 10 re f", 2, Dictionary())),
        ),
    ),
    "form XObject": lambda: one_page(
        b"/Fm0 Do", lambda pdf: Dictionary(XObject=Dictionary(Fm0=form(pdf, FILL, separation(pdf))))
    ),
    "transparency group": lambda: one_page(
        b"/GS0 gs /Fm0 Do",
        lambda pdf: Dictionary(
            ExtGState=Dictionary(GS0=Dictionary(Type=Name.ExtGState, CA=0.99, ca=0.99)),
            XObject=Dictionary(
                Fm0=form(
                    pdf,
                    FILL,
                    separation(pdf),
                    Group=Dictionary(S=Name.Transparency, I=True, CS=Name.DeviceRGB),
                )
            ),
        ),
    ),
    "soft mask": lambda: one_page(
        b"/GS0 gs " + FILL,
        lambda pdf: Dictionary(
            ColorSpace=Dictionary(CS0=separation(pdf)),
            ExtGState=Dictionary(
                GS0=Dictionary(
                    Type=Name.ExtGState,
                    SMask=Dictionary(
                        S=Name.Luminosity,
                        G=form(
                            pdf,
                            b"1 g 0 0 595 842 re f",
                            separation(pdf),
                            Group=Dictionary(S=Name.Transparency, CS=Name.DeviceGray),
                        ),
                    ),
                )
            ),
        ),
    ),
    "Type 3 font": lambda: one_page(
        b"BT /T3 100 Tf 100 300 Td (A) Tj ET",
        lambda pdf: Dictionary(Font=Dictionary(T3=type3_font(pdf))),
    ),
    "annotation": annotated_page,
}


@pytest.mark.parametrize("name", PDF_ATTACKS)
def test_a_pdf_cannot_hide_its_colour_in_a_process_colorant(name):
    result = analyse(PDF_ATTACKS[name]())
    assert (result.pages, result.color_pages) == (1, (1,))


JPX_CONTENT = {
    "content": lambda: page_encoded(INLINE_SPOT, Name.JPXDecode),
    "content said to be an image": lambda: page_encoded(INLINE_SPOT, Name.JPXDecode, **AS_AN_IMAGE),
    "form XObject": lambda: form_encoded(INLINE_SPOT, Name.JPXDecode),
}


@pytest.mark.parametrize("name", JPX_CONTENT)
def test_content_behind_a_filter_pikepdf_cannot_decode_is_refused(name):
    # Ghostscript decodes JPX and runs what it gets as content; qpdf cannot decode it, so
    # the inline image's spot colour cannot be renamed: the PDF is not analysed at all.
    document = JPX_CONTENT[name]()
    assert red_pixels_as_printed(document) > 0  # a printer prints it red
    with pytest.raises(UnreadableDocument, match="content encoded with an image's filter"):
        analyse(document)


@pytest.mark.parametrize(("space", "expected"), [(Name.DeviceRGB, (1,)), (Name.DeviceGray, ())])
def test_images_behind_jpx_and_dct_keep_their_answers(space, expected):
    # Images are drawn, not run: their samples are not searched, whatever their filter.
    components = 3 if space == Name.DeviceRGB else 1
    samples = b"\xff\x00\x00" if components == 3 else b"\x80"
    for filter in (Name.JPXDecode, Name.DCTDecode):
        pil = Image.frombytes("RGB" if components == 3 else "L", (1, 1), samples)
        out = io.BytesIO()
        pil.save(out, "JPEG2000" if filter == Name.JPXDecode else "JPEG", quality=100)
        document = one_page(
            b"q 200 0 0 200 100 100 cm /Im0 Do Q",
            lambda pdf, data=out.getvalue(), filter=filter: Dictionary(
                XObject=Dictionary(Im0=image(pdf, space, data, Filter=filter))
            ),
        )
        assert analyse(document).color_pages == expected, filter


def test_a_colorant_name_cut_short_by_a_nul_byte_is_refused():
    # Ghostscript compares a colorant name up to its first NUL: `/Black#00x` would be
    # Black to it. A PDF name may not hold a NUL, and qpdf says so: refused as damaged.
    with pytest.raises(UnreadableDocument, match="damaged"):
        analyse(one_page(FILL, with_space(lambda pdf: separation(pdf, "/Black\x00hidden"))))


def test_the_plainest_pdf_attack_was_colour_blind_without_the_defence(monkeypatch):
    attack = PDF_ATTACKS["fill"]()
    monkeypatch.setattr(analysis, "use_alternates", lambda pdf: False)  # what main did
    assert analyse(attack).color_pages == ()


def spot(name: str, alternate: Name, *values: float) -> Resources:
    """A Separation `name` whose alternate at full tint is `values` in `alternate`."""
    zeros = [0.0] * len(values) if alternate != Name.DeviceGray else [1.0]
    function = Dictionary(FunctionType=2, Domain=[0, 1], C0=zeros, C1=list(values), N=1)
    return with_space(lambda pdf: Array([Name.Separation, Name(name), alternate, function]))


def latin1_spot(alternate: Name, *values: float) -> bytes:
    """A page in a spot colour whose name is not UTF-8 (`/Grün` in Latin-1)."""
    document = one_page(FILL, spot("/GrXXXn", alternate, *values))
    with pikepdf.open(io.BytesIO(document)) as pdf:
        out = io.BytesIO()
        pdf.save(out, compress_streams=False, object_stream_mode=pikepdf.ObjectStreamMode.disable)
    return out.getvalue().replace(b"/GrXXXn", b"/Gr#FCn")  # as long: the offsets hold


# Spot colours as they are meant: the same answers with the defence as without it.
PDF_SPOTS: dict[str, tuple[Callable[[], bytes], tuple[int, ...]]] = {
    "PANTONE, gray alternate": (
        lambda: one_page(FILL, spot("/PANTONE 426 C", Name.DeviceGray, 0)),
        (),
    ),
    "PANTONE, red CMYK alternate": (
        lambda: one_page(FILL, spot("/PANTONE 185 C", Name.DeviceCMYK, 0, 0.9, 0.8, 0)),
        (1,),
    ),
    "Black, gray alternate": (lambda: one_page(FILL, spot("/Black", Name.DeviceGray, 0)), ()),
    "Black, CMYK black alternate": (
        lambda: one_page(FILL, spot("/Black", Name.DeviceCMYK, 0, 0, 0, 1)),
        (),
    ),
    # A CMYK printer paints it in cyan ink, whatever its alternate: colour.
    "Cyan, gray alternate": (lambda: one_page(FILL, spot("/Cyan", Name.DeviceGray, 0)), (1,)),
    # Registration marks: every colorant of the printer, cyan, magenta and yellow too.
    "All": (lambda: one_page(FILL, spot("/All", Name.DeviceGray, 0)), (1,)),
    "Latin-1 name, gray alternate": (lambda: latin1_spot(Name.DeviceGray, 0), ()),
    "Latin-1 name, red alternate": (lambda: latin1_spot(Name.DeviceRGB, 1, 0, 0), (1,)),
    "None paints nothing": (lambda: one_page(FILL, spot("/None", Name.DeviceRGB, 1, 0, 0)), ()),
}


@pytest.mark.parametrize("name", PDF_SPOTS)
def test_spot_colours_in_a_pdf_keep_their_answers(name, monkeypatch):
    make, expected = PDF_SPOTS[name]
    assert analyse(make()).color_pages == expected
    monkeypatch.setattr(analysis, "use_alternates", lambda pdf: False)
    assert analyse(make()).color_pages == expected


def test_a_process_colorant_prints_in_colour_on_either_kind_of_printer():
    # Tint 0 of cyan is no ink on a CMYK printer, and red on an RGB printer.
    attack = one_page(
        b"/CS0 cs 0 scn 100 100 200 200 re f", with_space(lambda pdf: separation(pdf, "/Cyan"))
    )
    assert analyse(attack).color_pages == (1,)


# --------------------------------------------------------------------------- PostScript

SEP = "[/Separation /Black /DeviceRGB {pop 1 0 0}]"
BOX = "100 100 200 200 rectfill"


def postscript(*lines: str) -> bytes:
    return ("\n".join(["%!PS", *lines, "showpage", ""])).encode()


SHADING = (
    f"<< /ShadingType 2 /ColorSpace {SEP} /Coords [0 0 595 0] /Extend [true true]"
    " /Function << /FunctionType 2 /Domain [0 1] /C0 [1] /C1 [1] /N 1 >> >>"
)
PS_ATTACKS: dict[str, bytes] = {
    "setcolorspace": postscript(f"{SEP} setcolorspace 1 setcolor {BOX}"),
    "from systemdict": postscript(f"{SEP} systemdict /setcolorspace get exec 1 setcolor {BOX}"),
    "name built with cvn": postscript(
        f"{SEP} (setcolor) (space) concatstrings cvn load exec 1 setcolor {BOX}"
    ),
    "inside save and restore": postscript(f"save {SEP} setcolorspace 1 setcolor {BOX} restore"),
    "hidden behind a filter": postscript(
        f"({f'{SEP} setcolorspace 1 setcolor {BOX}'.encode().hex()}>)"
        " /ASCIIHexDecode filter cvx exec"
    ),
    "colorant as a string": postscript(
        f"[/Separation (Black) /DeviceRGB {{pop 1 0 0}}] setcolorspace 1 setcolor {BOX}"
    ),
    "NUL after the colorant": postscript(
        f"[/Separation (Black\\000x) cvn /DeviceRGB {{pop 1 0 0}}] setcolorspace 1 setcolor {BOX}"
    ),
    "tint 0 of cyan": postscript(
        f"[/Separation /Cyan /DeviceRGB {{pop 1 0 0}}] setcolorspace 0 setcolor {BOX}"
    ),
    "DeviceN, black and none": postscript(
        f"[/DeviceN [/Black /None] /DeviceRGB {{pop pop 1 0 0}}] setcolorspace 1 0 setcolor {BOX}"
    ),
    "DeviceN, all none": postscript(
        f"[/DeviceN [/None] /DeviceRGB {{pop 1 0 0}}] setcolorspace 1 setcolor {BOX}"
    ),
    "DeviceN, a name Ghostscript takes for None": postscript(
        f"[/DeviceN [/No] /DeviceRGB {{pop 1 0 0}}] setcolorspace 1 setcolor {BOX}"
    ),
    "NChannel attributes": postscript(
        f"[/DeviceN [/Black] /DeviceRGB {{pop 1 0 0}} << /Subtype /NChannel"
        f" /Colorants << /Black {SEP} >> >>] setcolorspace 1 setcolor {BOX}"
    ),
    "stroke": postscript(
        f"{SEP} setcolorspace 1 setcolor 20 setlinewidth 100 100 200 200 rectstroke"
    ),
    "text": postscript(
        f"{SEP} setcolorspace 1 setcolor /Helvetica findfont 96 scalefont setfont"
        " 100 300 moveto (HIDDEN) show"
    ),
    "image dictionary": postscript(
        f"{SEP} setcolorspace 100 100 translate 200 200 scale << /ImageType 1 /Width 1"
        " /Height 1 /BitsPerComponent 8 /Decode [0 1] /ImageMatrix [1 0 0 1 0 0]"
        " /DataSource <ff> >> image"
    ),
    "indexed image": postscript(
        f"[/Indexed {SEP} 1 <00ff>] setcolorspace 100 100 translate 200 200 scale"
        " << /ImageType 1 /Width 1 /Height 1 /BitsPerComponent 8 /Decode [0 255]"
        " /ImageMatrix [1 0 0 1 0 0] /DataSource <01> >> image"
    ),
    "uncoloured pattern": postscript(
        f"[/Pattern {SEP}] setcolorspace"
        " << /PatternType 1 /PaintType 2 /TilingType 1 /BBox [0 0 10 10] /XStep 10 /YStep 10"
        " /PaintProc { pop 0 0 10 10 rectfill } >> matrix makepattern 1 exch setcolor"
        f" {BOX}"
    ),
    "coloured tiling pattern": postscript(
        "<< /PatternType 1 /PaintType 1 /TilingType 1 /BBox [0 0 10 10] /XStep 10 /YStep 10"
        f" /PaintProc {{ pop {SEP} setcolorspace 1 setcolor 0 0 10 10 rectfill }} >>"
        f" matrix makepattern setpattern {BOX}"
    ),
    "shfill": postscript(f"100 100 200 200 rectclip {SHADING} shfill"),
    "shading pattern": postscript(
        f"<< /PatternType 2 /Shading {SHADING} >> matrix makepattern setpattern {BOX}"
    ),
    "Ghostscript's shfill procedure": postscript(
        f"100 100 200 200 rectclip {SHADING} systemdict /.buildshading_and_shfill get exec"
    ),
    "setcustomcolor": postscript(f"1 0 0 (Black) findrgbcustomcolor 1 setcustomcolor {BOX}"),
    "customcolorimage": postscript(
        "100 100 translate 200 200 scale 1 1 8 [1 0 0 1 0 0] {<00>}"  # 0: full tint
        " 1 0 0 (Black) findrgbcustomcolor customcolorimage"
    ),
    "Type 3 font": postscript(
        "/T3 << /FontType 3 /FontMatrix [0.001 0 0 0.001 0 0] /FontBBox [0 0 1000 1000]"
        " /Encoding 256 array dup 65 /A put"
        f" /BuildChar {{ pop pop 1000 0 setcharwidth {SEP} setcolorspace 1 setcolor"
        " 0 0 800 800 rectfill } >> definefont pop /T3 findfont 100 scalefont setfont"
        " 100 300 moveto (A) show"
    ),
    "form": postscript(
        "<< /FormType 1 /BBox [0 0 595 842] /Matrix [1 0 0 1 0 0]"
        f" /PaintProc {{ pop {SEP} setcolorspace 1 setcolor {BOX} }} >> execform"
    ),
}


@pytest.mark.parametrize("name", PS_ATTACKS)
def test_postscript_cannot_hide_its_colour_in_a_process_colorant(name):
    result = analyse(PS_ATTACKS[name])
    assert (result.pages, result.color_pages) == (1, (1,))


def test_the_plainest_postscript_attack_was_colour_blind_without_the_defence(monkeypatch):
    monkeypatch.setattr(analysis, "alternates_for_postscript", lambda marker: ())  # main
    assert analyse(PS_ATTACKS["setcolorspace"]).color_pages == ()


PS_SPOTS: dict[str, tuple[bytes, tuple[int, ...]]] = {
    "PANTONE, gray alternate": (
        postscript(
            "[/Separation (PANTONE 426 C) /DeviceGray {1 exch sub}]"
            f" setcolorspace 1 setcolor {BOX}"
        ),
        (),
    ),
    "PANTONE, red CMYK alternate": (
        postscript(
            "[/Separation (PANTONE 185 C) /DeviceCMYK {dup 0 exch 0.9 mul exch 0.8 mul 0}]"
            f" setcolorspace 1 setcolor {BOX}"
        ),
        (1,),
    ),
    "Black, gray alternate": (
        postscript(
            f"[/Separation /Black /DeviceGray {{1 exch sub}}] setcolorspace 1 setcolor {BOX}"
        ),
        (),
    ),
    "Cyan, gray alternate": (
        postscript(
            f"[/Separation /Cyan /DeviceGray {{1 exch sub}}] setcolorspace 1 setcolor {BOX}"
        ),
        (1,),
    ),
    "custom black": (postscript(f"0 0 0 1 (Black) findcmykcustomcolor 1 setcustomcolor {BOX}"), ()),
    "All": (postscript(f"0.5 setseparationgray {BOX}"), (1,)),
    "None": (
        postscript(f"[/Separation /None /DeviceRGB {{pop 1 0 0}}] setcolorspace 1 setcolor {BOX}"),
        (),
    ),
}


@pytest.mark.parametrize("name", PS_SPOTS)
def test_spot_colours_in_postscript_keep_their_answers(name, monkeypatch):
    document, expected = PS_SPOTS[name]
    assert analyse(document).color_pages == expected
    monkeypatch.setattr(analysis, "alternates_for_postscript", lambda marker: ())
    assert analyse(document).color_pages == expected


def test_a_document_cannot_write_the_marker_that_asks_for_a_second_run():
    # The marker is random per run: one a document writes itself is only output.
    document = postscript("(\\nplaten-renamed:0123\\n) print flush 0.5 setgray " + BOX)
    assert analyse(document).color_pages == ()


async def test_the_resident_interpreter_is_protected_the_same_way():
    documents = {
        **{f"pdf {name}": make() for name, make in PDF_ATTACKS.items()},
        **{f"ps {name}": document for name, document in PS_ATTACKS.items()},
    }
    analyser = IsolatedAnalyser(Limits(timeout=60, workers=2))
    results = await asyncio.gather(*(analyser.analyse(doc) for doc in documents.values()))
    assert analyser._server is not None and analyser._server.ghostscript == "libgs"
    for name, result in zip(documents, results, strict=True):
        assert (result.pages, result.color_pages) == (1, (1,)), name


async def test_the_second_views_come_from_the_loaded_ghostscript_too(tmp_path, monkeypatch):
    # No `gs` program on the workers' PATH: the view of the PDF with its process colorants
    # renamed (as an RGB printer prints it), where the colour of this page is, is rendered
    # by a fork of the child's loaded Ghostscript, not by a `gs` started for it.
    empty = tmp_path / "no-programs"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    analyser = IsolatedAnalyser(Limits(timeout=60))
    result = await analyser.analyse(PDF_ATTACKS["fill"]())
    assert analyser._server is not None and analyser._server.ghostscript == "libgs"
    assert (result.pages, result.color_pages) == (1, (1,))
    # PostScript's second run (known to be needed only after the first) comes from a fork
    # made before the first run, waiting; one that is not needed is dismissed.
    renamed = await analyser.analyse(PS_ATTACKS["text"])
    assert (renamed.pages, renamed.color_pages) == (1, (1,))
    plain = await analyser.analyse(make_postscript([Page(marks=("black-text",))]))
    assert (plain.pages, plain.color_pages) == (1, ())
    # The answers are those of `gs` started for each view.
    monkeypatch.undo()
    assert analyse(PDF_ATTACKS["fill"]()).color_pages == (1,)
    assert analyse(PS_ATTACKS["text"]).color_pages == (1,)
    empty.rmdir()


def scan(setup: str, before: str = "") -> list[str]:
    """The guarded operators a document finds among everything it can read, after `setup`
    and `before` (the document's own first steps)."""
    return ghostscript_helpers.scan(GUARDED_OPERATORS, setup, before)


def test_no_document_can_reach_the_colour_space_operators_themselves():
    # Without the defence the walk finds them in Ghostscript's readable procedures.
    found = scan(ghostscript_setup(False))
    assert {"--setcolorspace--", "--makepattern--"} <= set(found), found
    setup = ghostscript_setup(True)
    assert scan(setup) == []
    # Not after a restore either, nor in an idiom set loaded again, nor in a procedure
    # bound while idiom recognition is on.
    assert scan(setup, "save restore ") == []
    assert scan(setup, "/Pscript5Idiom /IdiomSet findresource pop ") == []
    assert scan(setup, "/p { setcolorspace makepattern shfill } bind def ") == []
