"""PostScript that changes the ink controls the analysis relies on, to print colour as black.

The analysis renders in Ghostscript's fast (non-ICC) CMYK path with its own black
generation and undercolour removal; a document that sets its own (or transfer functions)
could make a red page print no coloured ink there, while the printer prints it red. Each
attack below is a red page that must still be a colour page, in `gs` started per
document and in the resident libgs the analysis workers use; the harmless uses real
drivers make of the same operators change nothing. Real Ghostscript throughout.
"""

from __future__ import annotations

import asyncio
import subprocess

import pytest

from platen.job_capture.analysis import (
    INK_CONTROL_OPERATORS,
    PDF_INTERPRETER_ENTRIES,
    Analysis,
    UnreadableDocument,
    analyse,
    ghostscript_options,
    ghostscript_setup,
)
from platen.job_capture.isolation import IsolatedAnalyser, Limits

from . import ghostscript_helpers
from .test_colour_analysis import pdf_with_ink_controls

RED = "1 0 0 setrgbcolor 100 100 200 200 rectfill"
GRAY = "0.5 setgray 100 100 200 200 rectfill"
ERASE_UCR = "{pop 1} setundercolorremoval {pop 0} setblackgeneration"


def postscript(*lines: str) -> bytes:
    return ("\n".join(["%!PS", *lines, ""])).encode()


def hex_of(code: str) -> str:
    return code.encode().hex()


# Each prints one red page and tries to make the analysis see no coloured ink on it.
ATTACKS = {
    "undercolour removal": postscript(ERASE_UCR, RED, "showpage"),
    "transfer function": postscript("{pop 1} settransfer", RED, "showpage"),
    "colour transfer, four procedures": postscript(
        "{pop 1} {pop 1} {pop 1} {} setcolortransfer", RED, "showpage"
    ),
    "from systemdict": postscript(
        "{pop 1} systemdict /setundercolorremoval get exec", RED, "showpage"
    ),
    "immediately evaluated name": postscript(
        "/erase { {pop 1} //setundercolorremoval {pop 1} //settransfer } def",
        "erase",
        RED,
        "showpage",
    ),
    "name built with cvn": postscript(
        "/s 20 string def s 0 (setundercolor) putinterval s 13 (removal) putinterval",
        "{pop 1} s cvn load exec",
        RED,
        "showpage",
    ),
    "hidden behind a filter": postscript(
        f"({hex_of('{pop 1} setundercolorremoval {pop 1} settransfer')}>)"
        " /ASCIIHexDecode filter cvx exec",
        RED,
        "showpage",
    ),
    "inside save and restore": postscript(f"save {ERASE_UCR} {RED} restore", "showpage"),
    "reset before showpage": postscript(
        ERASE_UCR,
        "{pop 1} settransfer",
        RED,
        "{} settransfer",
        "{} setblackgeneration",
        "{} setundercolorremoval",
        "showpage",
    ),
    # Ghostscript's own procedure, which loads the procedure it installs by name.
    "through .setdefaultscreen": postscript(
        "(%.defaultbgrucrproc) cvn {pop 1} def .setdefaultscreen", RED, "showpage"
    ),
    # Every operator taken out of whatever procedure a document can read.
    "operator taken out of a readable procedure": postscript(
        "/found null def",
        "/look { dup type /operatortype eq { dup 64 string cvs (settransfer) eq"
        " { /found exch def } { pop } ifelse } { dup type /arraytype eq"
        " { dup rcheck { { look } forall } { pop } ifelse } { pop } ifelse } ifelse } def",
        "systemdict { exch pop look } forall",
        "found null ne { {pop 1} found exec } if",
        RED,
        "showpage",
    ),
    # A contone device applies no halftone, so its transfer function is not used either.
    "halftone transfer function": postscript(
        "<< /HalftoneType 1 /Frequency 60 /Angle 45 /TransferFunction {pop 1}"
        " /SpotFunction {dup mul exch dup mul add 1 exch sub} >> sethalftone",
        RED,
        "showpage",
    ),
}


def pdf_inside_postscript(prologue: str) -> bytes:
    """PostScript that runs its own tail, a PDF whose graphics states erase colour."""
    return postscript(prologue) + pdf_with_ink_controls()


# Ghostscript's PDF interpreters set a PDF's ink controls themselves: refused.
PDF_INSIDE = {
    "currentfile runpdf": pdf_inside_postscript("currentfile runpdf"),
    "legacy PDF interpreter": pdf_inside_postscript("/NEWPDF false def currentfile runpdf"),
    "runpdfbegin": pdf_inside_postscript("currentfile runpdfbegin 1 1 dopdfpages runpdfend"),
}

# What drivers' prologues do with the same operators: a gray page, then a red one.
HARMLESS = {
    "identity transfer": postscript("{} settransfer", GRAY, "showpage", RED, "showpage"),
    "identity colour transfer": postscript(
        "{} {} {} {} setcolortransfer", GRAY, "showpage", RED, "showpage"
    ),
    "default black generation": postscript(
        "{} setblackgeneration {pop 0} setundercolorremoval", GRAY, "showpage", RED, "showpage"
    ),
    "Ghostscript's default screen": postscript(
        ".setdefaultscreen", GRAY, "showpage", RED, "showpage"
    ),
}


@pytest.mark.parametrize("name", ATTACKS)
def test_postscript_cannot_hide_its_colour(name):
    result = analyse(ATTACKS[name])
    assert (result.pages, result.color_pages) == (1, (1,))


def test_the_attack_in_its_plainest_form_was_colour_blind_without_the_defence():
    # What main did: the same rendering without the replaced operators sees no colour.
    run = subprocess.run(
        [
            "gs",
            *ghostscript_options("-"),
            "-r36",
            "-c",
            "{} setblackgeneration {0.03 add} setundercolorremoval",
            "-",
        ],
        input=ATTACKS["undercolour removal"],
        capture_output=True,
        check=True,
    )
    (page,) = [line for line in run.stdout.decode().splitlines() if "CMYK" in line]
    assert page.split()[:4] == ["0.00000"] * 4


@pytest.mark.parametrize("name", PDF_INSIDE)
def test_postscript_that_runs_a_pdf_is_refused(name):
    with pytest.raises(UnreadableDocument, match="stops with an error"):
        analyse(PDF_INSIDE[name])


@pytest.mark.parametrize("name", HARMLESS)
def test_drivers_harmless_uses_give_the_same_answers(name):
    result = analyse(HARMLESS[name])
    assert (result.pages, result.color_pages) == (2, (2,))


async def test_the_resident_interpreter_is_protected_the_same_way():
    documents = {**ATTACKS, **PDF_INSIDE, **HARMLESS}
    analyser = IsolatedAnalyser(Limits(timeout=60, workers=2))

    async def answer(document: bytes) -> Analysis | str:
        try:
            return await analyser.analyse(document)
        except UnreadableDocument as refusal:
            return str(refusal)

    resident = await asyncio.gather(*(answer(doc) for doc in documents.values()))
    assert analyser._server is not None and analyser._server.ghostscript == "libgs"
    for name, result in zip(documents, resident, strict=True):
        if name in PDF_INSIDE:
            assert isinstance(result, str) and "stops with an error" in result, name
        elif name in HARMLESS:
            assert isinstance(result, Analysis) and result.color_pages == (2,), name
        else:
            assert isinstance(result, Analysis) and result.color_pages == (1,), name


OPERATORS = ("setblackgeneration", "setundercolorremoval", "settransfer", "setcolortransfer")
PDF_STARTS = (".PDFInit", ".PDFFile", ".PDFStream")  # a PDF interpreter's context


def scan(setup: str) -> list[str]:
    """What the walk finds, in the rendering a PostScript document gets, after `setup`."""
    return ghostscript_helpers.scan((*OPERATORS, *PDF_STARTS), setup)


def test_no_document_can_reach_the_operators_themselves():
    # Without the defence the scan finds them all, in systemdict and in Ghostscript's
    # own readable procedures (.setloresscreen holds settransfer).
    found = scan("")
    for name in (*OPERATORS, ".PDFInit"):
        assert f"--{name}--" in found or name in found, (name, found)
    assert scan(ghostscript_setup(True)) == []
    assert set(OPERATORS) <= set(INK_CONTROL_OPERATORS)
    assert set(PDF_STARTS) <= set(PDF_INTERPRETER_ENTRIES)
