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
import subprocess
from collections.abc import Callable

import pikepdf
import pytest
from pikepdf import Array, Dictionary, Name

from platen.job_capture import analysis
from platen.job_capture.analysis import (
    Analysis,
    UnreadableDocument,
    analyse,
    ghostscript_options,
    ghostscript_setup,
)
from platen.job_capture.isolation import IsolatedAnalyser, Limits
from platen.job_capture.separations import ALTERNATES_FOR_POSTSCRIPT, GUARDED_OPERATORS

from .test_postscript_ink_controls import SCAN

# --------------------------------------------------------------------------- PDF

Resources = Callable[[pikepdf.Pdf], Dictionary]


def red(pdf: pikepdf.Pdf, outputs: int = 1) -> Dictionary:
    """A tint transform to red in DeviceRGB from `outputs` tints: red at any tint."""
    return Dictionary(
        FunctionType=2, Domain=[0, 1] * outputs, C0=[1, 0, 0], C1=[1, 0, 0], N=1
    ) if outputs == 1 else pdf.make_indirect(
        pikepdf.Stream(
            pdf,
            b"{" + b"pop " * outputs + b"1 0 0}",
            FunctionType=4,
            Domain=[0, 1] * outputs,
            Range=[0, 1, 0, 1, 0, 1],
        )
    )


def separation(pdf: pikepdf.Pdf, name: str = "/Black") -> Array:
    return Array([Name.Separation, Name(name), Name.DeviceRGB, red(pdf)])


def device_n(pdf: pikepdf.Pdf, *names: str, attributes: Dictionary | None = None) -> Array:
    space = [Name.DeviceN, Array([Name(n) for n in names]), Name.DeviceRGB, red(pdf, len(names))]
    return Array([*space, attributes] if attributes is not None else space)


def one_page(content: bytes, resources: Resources | None = None, **page: object) -> bytes:
    pdf = pikepdf.new()
    page_dict = Dictionary(
        Type=Name.Page,
        MediaBox=[0, 0, 595, 842],
        Contents=pdf.make_indirect(pikepdf.Stream(pdf, content)),
        **page,
    )
    if resources is not None:
        page_dict.Resources = resources(pdf)
    pdf.pages.append(pikepdf.Page(page_dict))
    for key, value in page.items():  # annotations refer to their page
        if key == "Annots":
            for annotation in value:
                annotation.P = pdf.pages[0].obj
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


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


def image(pdf: pikepdf.Pdf, space: Array) -> pikepdf.Stream:
    return pdf.make_indirect(
        pikepdf.Stream(
            pdf,
            b"\xff",
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


def inline_image(space: bytes) -> bytes:
    return b"q 200 0 0 200 100 100 cm BI /W 1 /H 1 /BPC 8 /CS " + space + b" ID \xff EI Q"


INLINE_RED = b"<< /FunctionType 2 /Domain [0 1] /C0 [1 0 0] /C1 [1 0 0] /N 1 >>"


def _annotated() -> bytes:
    pdf = pikepdf.new()
    holder = annotation(pdf)
    # Built again in the page's own file: an annotation is an object of its file.
    del pdf
    return one_page(b"", None, Annots=Array([holder])) if False else _annotated_page()


def _annotated_page() -> bytes:
    pdf = pikepdf.new()
    page = Dictionary(
        Type=Name.Page,
        MediaBox=[0, 0, 595, 842],
        Contents=pdf.make_indirect(pikepdf.Stream(pdf, b"")),
    )
    pdf.pages.append(pikepdf.Page(page))
    holder = annotation(pdf)
    holder.P = pdf.pages[0].obj
    pdf.pages[0].obj.Annots = Array([holder])
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


PDF_ATTACKS: dict[str, Callable[[], bytes]] = {
    "fill": lambda: one_page(FILL, with_space(separation)),
    "stroke": lambda: one_page(
        b"/CS0 CS 1 SCN 20 w 100 100 200 200 re S", with_space(separation)
    ),
    "text": lambda: one_page(
        b"BT /CS0 cs 1 scn /F1 96 Tf 100 300 Td (HIDDEN) Tj ET",
        lambda pdf: Dictionary(
            ColorSpace=Dictionary(CS0=separation(pdf)),
            Font=Dictionary(F1=Dictionary(Type=Name.Font, Subtype=Name.Type1, BaseFont=Name.Helvetica)),
        ),
    ),
    "each process colorant": lambda: one_page(
        b" ".join(
            f"/S{n} cs 1 scn {100 + 50 * n} 100 40 40 re f".encode() for n in range(4)
        ),
        lambda pdf: Dictionary(
            ColorSpace=Dictionary(
                **{
                    f"S{n}": Array([Name.Separation, Name(ink), Name.DeviceGray, Dictionary(
                        FunctionType=2, Domain=[0, 1], C0=[1], C1=[1], N=1
                    )])
                    for n, ink in enumerate(("/Cyan", "/Magenta", "/Yellow", "/Black"))
                }
            )
        ),
    )
    if False
    else one_page(FILL, with_space(lambda pdf: separation(pdf, "/Cyan"))),
    "DeviceN, black and none": lambda: one_page(
        b"/CS0 cs 1 0 scn 100 100 200 200 re f",
        with_space(lambda pdf: device_n(pdf, "/Black", "/None")),
    ),
    "DeviceN, all none": lambda: one_page(
        FILL, with_space(lambda pdf: device_n(pdf, "/None"))
    ),
    "DeviceN, a name Ghostscript takes for None": lambda: one_page(
        FILL, with_space(lambda pdf: device_n(pdf, "/N"))
    ),
    "NChannel": lambda: one_page(
        b"/CS0 cs 1 1 scn 100 100 200 200 re f",
        with_space(
            lambda pdf: device_n(
                pdf,
                "/Black",
                "/Magenta",
                attributes=Dictionary(
                    Subtype=Name.NChannel,
                    Process=Dictionary(
                        ColorSpace=Name.DeviceCMYK,
                        Components=[Name.Cyan, Name.Magenta, Name.Yellow, Name.Black],
                    ),
                    Colorants=Dictionary(Black=separation(pdf)),
                ),
            )
            if False
            else device_n(
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
                Im0=image(
                    pdf, Array([Name.Indexed, separation(pdf), 255, b"\xff" * 256])
                )
            )
        ),
    ),
    "inline image": lambda: one_page(
        inline_image(b"[/Separation /Black /DeviceRGB " + INLINE_RED + b"]")
    ),
    "inline image, named space": lambda: one_page(inline_image(b"/CS0"), with_space(separation)),
    "shading (sh)": lambda: one_page(
        b"q 100 100 200 200 re W n /Sh0 sh Q",
        lambda pdf: Dictionary(Shading=Dictionary(Sh0=axial(pdf, separation(pdf)))),
    ),
    "shading pattern": lambda: one_page(
        b"/Pattern cs /P0 scn 100 100 200 200 re f",
        lambda pdf: Dictionary(
            Pattern=Dictionary(
                P0=pdf.make_indirect(
                    Dictionary(PatternType=2, Shading=axial(pdf, separation(pdf)))
                )
            )
        ),
    ),
    "tiling pattern": lambda: one_page(
        b"/Pattern cs /P0 scn 100 100 200 200 re f",
        lambda pdf: Dictionary(
            Pattern=Dictionary(
                P0=pdf.make_indirect(
                    pikepdf.Stream(
                        pdf,
                        b"/CS0 cs 1 scn 0 0 10 10 re f",
                        PatternType=1,
                        PaintType=1,
                        TilingType=1,
                        BBox=[0, 0, 10, 10],
                        XStep=10,
                        YStep=10,
                        Resources=Dictionary(ColorSpace=Dictionary(CS0=separation(pdf))),
                    )
                )
            )
        ),
    ),
    "uncoloured tiling pattern": lambda: one_page(
        b"/PCS cs 1 /P0 scn 100 100 200 200 re f",
        lambda pdf: Dictionary(
            ColorSpace=Dictionary(PCS=Array([Name.Pattern, separation(pdf)])),
            Pattern=Dictionary(
                P0=pdf.make_indirect(
                    pikepdf.Stream(
                        pdf,
                        b"0 0 10 10 re f",
                        PatternType=1,
                        PaintType=2,
                        TilingType=1,
                        BBox=[0, 0, 10, 10],
                        XStep=10,
                        YStep=10,
                        Resources=Dictionary(),
                    )
                )
            ),
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
    "annotation": _annotated_page,
}


@pytest.mark.parametrize("name", PDF_ATTACKS)
def test_a_pdf_cannot_hide_its_colour_in_a_process_colorant(name):
    result = analyse(PDF_ATTACKS[name]())
    assert (result.pages, result.color_pages) == (1, (1,))
