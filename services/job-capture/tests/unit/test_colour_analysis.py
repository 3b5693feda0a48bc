"""Colour pages, paper sizes, PostScript and limits of document analysis.

Documents come from platen.testing.documents, whose pages have known answers. Each test
that renders runs Ghostscript once; the per-mark tests share one run per format.
"""

import io
import random
import subprocess
import sys

import pikepdf
import pytest
from pikepdf import Dictionary, Name

from platen.job_capture import analysis as analysis_module
from platen.job_capture.analysis import (
    Analysis,
    UnreadableDocument,
    analyse,
    paper_name,
    parse_ink_coverage,
    prints_in_colour,
    render_resolution,
)
from platen.testing.documents import (
    A3,
    A4,
    A5,
    COLOR_MARKS,
    LEGAL,
    LETTER,
    MARKS,
    TABLOID,
    Page,
    make_pdf,
    make_pdf_pages,
    make_postscript,
)

MM = 72 / 25.4

# --------------------------------------------------------------------------- the colour rule


@pytest.mark.parametrize(
    ("ink", "colour"),
    [
        ((0, 0, 0, 0), False),  # white page
        ((0, 0, 0, 2.04), False),  # black or gray: black ink only
        ((0, 0, 0, 100), False),  # a page painted black
        ((0, 0.00166, 0.00166, 0), True),  # a 2x2 pt red mark on A4 at 100 dpi
        ((0.00001, 0, 0, 0), True),  # the least ink_cov can report
        ((3.9854, 3.9854, 3.9854, 0), True),  # red, green, blue stripes add up to C = M = Y
        ((0.41, 0.41, 0.41, 0.83), True),  # CMYK rich black asks for coloured ink
    ],
)
def test_prints_in_colour(ink, colour):
    assert prints_in_colour(*ink) is colour


# In a process of its own, as an analysis child is: what reading a report imports.
READ_A_REPORT = """
import sys
from pathlib import Path
from platen.job_capture import analysis
report = Path(sys.argv[1])
report.write_bytes(b"  0.10000  0.00000  0.00000  0.20000 CMYK OK\\n")
before = set(sys.modules)
assert analysis._ink_report(report, 0) == (0, [(0.1, 0.0, 0.0, 0.2)])
print(sorted(set(sys.modules) - before))
"""


def test_reading_an_ink_report_imports_nothing(tmp_path):
    # Each analysis child reads one report; a module it imports for it is imported again
    # in every child, on every document's path.
    run = subprocess.run(
        [sys.executable, "-c", READ_A_REPORT, str(tmp_path / "ink.txt")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert run.stdout.strip() == "[]"


def test_parse_ink_coverage():
    text = (
        " 0.00000  0.00000  0.00000  0.05872 CMYK OK\n"
        " 0.00000  0.00166  0.00166  0.00000 CMYK OK\n"
        "12.50000 99.00000  0.00000 100.00000 CMYK OK\n"
    )
    assert parse_ink_coverage(text) == [
        (0.0, 0.0, 0.0, 0.05872),
        (0.0, 0.00166, 0.00166, 0.0),
        (12.5, 99.0, 0.0, 100.0),
    ]
    assert parse_ink_coverage("") == []


@pytest.mark.parametrize(
    "text",
    [
        "-1.00000 -1.00000 -1.00000 -1.00000 CMYK ERROR\n",
        " 0.1 0.2 0.3 CMYK OK\n",
        "   **** Error: Page drawing error occurred.\n",
        " 0.00000  0.00000  0.00000  nan CMYK OK\n",
        " 0.00000  0.00000  0.00000  0.00000 RGB OK\n",
    ],
    ids=["device-error", "three-inks", "gs-message", "nan", "not-cmyk"],
)
def test_unexpected_ink_coverage_is_an_error(text):
    with pytest.raises(ValueError):
        parse_ink_coverage(text)


# --------------------------------------------------------------------------- paper names


@pytest.mark.parametrize(
    ("size_mm", "name"),
    [
        ((210, 297), "A4"),
        ((297, 210), "A4"),
        ((212, 295), "A4"),  # within 2 mm
        ((208, 299), "A4"),
        ((212.6, 297), "213x297mm"),  # 2.6 mm off: not A4
        ((297, 420), "A3"),
        ((420, 297), "A3"),
        ((148, 210), "A5"),
        ((105, 148), "A6"),
        ((420, 594), "A2"),
        ((215.9, 279.4), "Letter"),
        ((279.4, 215.9), "Letter"),
        ((215.9, 355.6), "Legal"),
        ((279.4, 431.8), "Tabloid"),
        ((431.8, 279.4), "Tabloid"),  # "Ledger" is the same paper
        ((100, 150), "100x150mm"),
        ((150, 100), "100x150mm"),  # orientation never matters
        ((99.4, 150.6), "99x151mm"),
        ((841, 1189), "841x1189mm"),  # A0 is not a size Platen names
    ],
)
def test_paper_name(size_mm, name):
    width, height = size_mm
    assert paper_name(width * MM, height * MM) == name


@pytest.mark.parametrize(
    ("sizes", "dpi"),
    [
        ([], 100),
        ([A4], 100),
        ([A4, A3, A4], 100),
        ([(2384, 3370)], 71),  # A0: kept under the pixel budget
        ([A4, (2384, 3370)], 71),  # the largest page decides
        ([(14400, 14400)], 36),  # never below 36 dpi, where hairlines still show
    ],
)
def test_render_resolution(sizes, dpi):
    assert render_resolution(sizes) == dpi


# --------------------------------------------------------------------------- every mark


def mark_pages():
    return [Page(marks=(mark,)) for mark in MARKS] + [Page()]


@pytest.fixture(scope="module", params=["pdf", "postscript"])
def every_mark(request):
    make = make_pdf_pages if request.param == "pdf" else make_postscript
    return request.param, analyse(make(mark_pages()))


@pytest.mark.parametrize("mark", [*MARKS, "nothing"])
def test_each_mark_on_its_own_page(every_mark, mark):
    fmt, result = every_mark
    assert result.format == fmt
    assert result.pages == len(MARKS) + 1
    page = MARKS.index(mark) + 1 if mark != "nothing" else len(MARKS) + 1
    assert (page in result.color_pages) is (mark in COLOR_MARKS)


def test_every_mark_gives_exactly_the_known_colour_pages(every_mark):
    _, result = every_mark
    expected = tuple(n for n, page in enumerate(mark_pages(), start=1) if page.color)
    assert result.color_pages == expected
    assert result.page_sizes == ("A4",) * (len(MARKS) + 1)


# --------------------------------------------------------------------------- known answers


def test_21_pages_whose_only_colour_is_a_tiny_mark_on_page_7():
    gray = ("black-text", "gray-shape", "devicegray-shape", "gray-image", "rgb-gray-image")
    pages = [Page(marks=gray) for _ in range(21)]
    pages[6] = Page(marks=(*gray, "tiny-color-mark"))
    result = analyse(make_pdf_pages(pages))
    assert result.pages == 21
    assert result.color_pages == (7,)


def test_a_long_mixed_document_has_exactly_its_colour_pages():
    rng = random.Random(20261123)
    pages = [Page(marks=tuple(rng.sample(MARKS, rng.randrange(0, 4)))) for _ in range(60)]
    expected = tuple(n for n, page in enumerate(pages, start=1) if page.color)
    assert 0 < len(expected) < 60
    for make in (make_pdf_pages, make_postscript):
        assert analyse(make(pages)).color_pages == expected


MIXED_PAPER = [
    (Page(size=A4, marks=("black-text",)), "A4"),
    (Page(size=A3, marks=("color-shape",)), "A3"),
    (Page(size=LETTER), "Letter"),
    (Page(size=(842, 595), marks=("gray-shape",)), "A4"),  # landscape A4
    (Page(size=A4, rotate=90, marks=("tiny-color-mark",)), "A4"),  # A4 shown landscape
    (Page(size=A3, crop=A4), "A4"),  # what prints is the CropBox
    (Page(size=LEGAL), "Legal"),
    (Page(size=TABLOID), "Tabloid"),
    (Page(size=A5, marks=("color-image",)), "A5"),
    (Page(size=(100 * MM, 150 * MM)), "100x150mm"),
]


def test_pdf_with_mixed_paper_sizes():
    result = analyse(make_pdf_pages(page for page, _ in MIXED_PAPER))
    assert result.page_sizes == tuple(name for _, name in MIXED_PAPER)
    assert result.color_pages == (2, 5, 9)


def test_colour_outside_the_cropbox_does_not_print():
    # A3 page cropped to its lower-left A4: the colour shape sits outside the crop.
    page = Page(size=A3, crop=(595, 300), marks=("color-shape", "black-text"))
    result = analyse(make_pdf_pages([page]))
    assert result.color_pages == ()
    assert result.page_sizes == ("106x210mm",)


def test_postscript_with_mixed_paper_sizes():
    # PostScript has no CropBox or /Rotate: each page is its /PageSize.
    pages = [page for page, _ in MIXED_PAPER]
    result = analyse(make_postscript(pages))
    assert result == Analysis(
        format="postscript",
        pages=10,
        color_pages=(2, 5, 9),
        page_sizes=("A4", "A3", "Letter", "A4", "A4", "A3", "Legal", "Tabloid", "A5", "100x150mm"),
    )


CONVERTERS = {
    # How print pipelines turn PDF into PostScript: CUPS's pdftops filter runs poppler's
    # pdftops (which writes ICC-based colour as CIE-based colour spaces); ps2write is
    # Ghostscript's; pdftocairo is poppler's other renderer.
    "pdftops": ["pdftops", "-", "-"],
    "pdftocairo": ["pdftocairo", "-ps", "-", "-"],
    "ps2write": [
        "gs",
        "-dSAFER",
        "-dBATCH",
        "-dNOPAUSE",
        "-q",
        "-sDEVICE=ps2write",
        "-o",
        "-",
        "-",
    ],
}


@pytest.mark.parametrize("converter", sorted(CONVERTERS))
def test_postscript_from_a_print_pipeline(converter):
    pages = [*mark_pages(), Page(size=A3, marks=("gray-shape", "tiny-color-mark"))]
    pages += [Page(size=LETTER, marks=("icc-gray-shape", "gray-image"))]
    converted = subprocess.run(
        CONVERTERS[converter], input=make_pdf_pages(pages), capture_output=True, check=True
    ).stdout
    assert converted.startswith(b"%!PS")
    result = analyse(converted)
    assert result.format == "postscript"
    assert result.pages == len(pages)
    expected = [n for n, page in enumerate(pages, start=1) if page.color]
    if converter == "pdftocairo":
        # Cairo writes RGB only: CMYK rich black arrives as plain (neutral) black.
        expected.remove(MARKS.index("cmyk-rich-black-shape") + 1)
    assert result.color_pages == tuple(expected)
    assert result.page_sizes == ("A4",) * (len(pages) - 2) + ("A3", "Letter")


def test_postscript_that_sets_no_page_size_is_a4():
    result = analyse(b"%!PS\n0 setgray 100 100 200 200 rectfill showpage showpage\n")
    assert result == Analysis(format="postscript", pages=2, color_pages=(), page_sizes=("A4", "A4"))


def test_postscript_may_start_after_whitespace_and_write_to_stdout():
    document = b"\n  %!PS\n(hello) = 1000 { (platen) print } repeat 1 0 0 setrgbcolor"
    document += b" 10 10 5 5 rectfill showpage\n"
    result = analyse(document)
    assert (result.pages, result.color_pages) == (1, (1,))


def test_analysis_ms_is_measured_but_not_compared():
    result = analyse(make_pdf_pages([Page(marks=("black-text",))]))
    assert result.analysis_ms >= 1
    assert result == Analysis(format="pdf", pages=1, color_pages=(), page_sizes=("A4",))


# --------------------------------------------------------------------------- near-neutral


def pdf_of(contents: list[bytes], image: bytes = b"") -> bytes:
    """A4 pages drawn by raw content streams; /Im is a 16x16 RGB image of `image`."""
    pdf = pikepdf.new()
    resources = Dictionary()
    if image:
        resources.XObject = Dictionary(
            Im=pikepdf.Stream(
                pdf,
                image,
                Type=Name.XObject,
                Subtype=Name.Image,
                Width=16,
                Height=16,
                ColorSpace=Name.DeviceRGB,
                BitsPerComponent=8,
            )
        )
    for content in contents:
        page = Dictionary(Type=Name.Page, MediaBox=[0, 0, 595, 842], Resources=resources)
        page.Contents = pdf.make_indirect(pikepdf.Stream(pdf, content))
        pdf.pages.append(pikepdf.Page(page))
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


NEAR_NEUTRAL = [
    # (what is drawn, prints in colour)
    (b"0.5 0.52 0.5 rg 100 100 200 200 re f", False),  # channels 2% apart: gray
    (b"0.5 0.54 0.5 rg 100 100 200 200 re f", True),  # 4% apart: colour
    (b"0.1 0.09 0.09 rg 100 100 200 200 re f", False),  # a warm near-black
    (b"0.05 0.05 0.1 rg 100 100 200 200 re f", True),  # navy, dark but blue
    (b"1 1 0.95 rg 0 0 595 842 re f", True),  # a faint cream page, 5% off white
    (b"1 1 0.98 rg 0 0 595 842 re f", False),  # 2% off white: as good as white paper
    (b"q 200 0 0 200 100 100 cm /Im Do Q", False),  # a gray scan with chroma noise
    (b"q 200 0 0 200 100 100 cm /Im Do Q 1 0 0 rg 300.4 500.6 2 2 re f", True),
]


def test_near_neutral_colours_print_gray_and_faint_hues_do_not_hide_colour():
    rng = random.Random(7)
    noisy = bytearray()
    for _ in range(16 * 16):
        level = rng.randrange(30, 220)
        noisy += bytes(max(0, min(255, level + rng.randint(-3, 3))) for _ in range(3))
    result = analyse(pdf_of([content for content, _ in NEAR_NEUTRAL], bytes(noisy)))
    expected = tuple(n for n, (_, colour) in enumerate(NEAR_NEUTRAL, start=1) if colour)
    assert result.color_pages == expected


# --------------------------------------------------------------------------- tricks and traps


def pdf_with_ink_controls() -> bytes:
    """Red shapes under graphics states that would erase colour in the fast colour path."""
    pdf = pikepdf.new()
    erase = pdf.make_indirect(
        pikepdf.Stream(pdf, b"{pop 1}", FunctionType=4, Domain=[0, 1], Range=[0, 1])
    )
    nothing = pdf.make_indirect(
        pikepdf.Stream(pdf, b"{pop 0}", FunctionType=4, Domain=[0, 1], Range=[0, 1])
    )
    states = Dictionary(
        U1=Dictionary(Type=Name.ExtGState, UCR=erase, BG=nothing),
        U2=pdf.make_indirect(Dictionary(UCR2=erase, BG2=nothing)),
        T1=Dictionary(TR=pikepdf.Array([erase, erase, erase, nothing])),
    )
    for state in ("U1", "U2", "T1"):
        content = f"/{state} gs 1 0 0 rg 100 100 200 200 re f".encode()
        pdf.pages.append(
            pikepdf.Page(
                Dictionary(
                    Type=Name.Page,
                    MediaBox=[0, 0, 595, 842],
                    Resources=Dictionary(ExtGState=states),
                    Contents=pdf.make_indirect(pikepdf.Stream(pdf, content)),
                )
            )
        )
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def test_device_ink_controls_cannot_hide_colour():
    assert analyse(pdf_with_ink_controls()).color_pages == (1, 2, 3)


def test_a_pdf_encrypted_without_a_user_password_is_analysed():
    # Only an owner password (restrictions): anyone can open it, and so can we.
    out = io.BytesIO()
    with pikepdf.open(io.BytesIO(make_pdf_pages([Page(marks=("color-shape",))] * 2))) as pdf:
        pdf.save(out, encryption=pikepdf.Encryption(user="", owner="owner"))
    result = analyse(out.getvalue())
    assert (result.pages, result.color_pages) == (2, (1, 2))


def test_a_pdf_whose_page_content_is_garbage_still_has_a_clear_answer():
    pdf = pikepdf.new()
    pdf.add_blank_page()
    pdf.pages[0].obj.Contents = pdf.make_indirect(
        pikepdf.Stream(pdf, b"1 0 0 rg 10 10 50 50 re f ]] (unbalanced >> BT Tj 5 re")
    )
    out = io.BytesIO()
    pdf.save(out)
    result = analyse(out.getvalue())
    assert (result.pages, result.color_pages) == (1, (1,))


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (b"%!PS-Adobe-3.0\n%%EOF\n", "the PostScript document has no pages"),
        (b"%!", "the PostScript document has no pages"),
        (
            b"%!PS\n0 setgray 10 10 5 5 rectfill showpage\nnot-an-operator\nshowpage\n",
            r"the PostScript document cannot be printed \(it stops with an error\)",
        ),
        (b"%!PS\n[ 1 2 (unterminated\n", "cannot be printed"),
        (b"%!PS\n" + bytes(range(256)) * 4, "cannot be printed"),
        (
            b"%!PS\n<< /EndPage { exch pop 2 ne } >> setpagedevice showpage\n",
            r"cannot be analysed \(it changes page handling\)",
        ),
        (
            b"%!PS\n(platen-page: 595 842) = (platen-page: 595 842) = showpage\n",
            "cannot be analysed",
        ),
    ],
    ids=["comments-only", "bare-header", "error", "syntax", "binary", "own-endpage", "forged"],
)
def test_postscript_that_cannot_be_analysed(document, reason):
    with pytest.raises(UnreadableDocument, match=reason):
        analyse(document)


def test_postscript_that_scribbles_over_the_ink_report_is_refused():
    # Ghostscript lets a document write to the device's output file, even with -dSAFER.
    document = b"""%!PS
    0 setgray 10 10 5 5 rectfill showpage
    currentpagedevice /OutputFile get (w) file dup (not an ink report\n) writestring closefile
    """
    with pytest.raises(UnreadableDocument, match="cannot be printed"):
        analyse(document)


def test_a_document_that_runs_forever_is_refused_and_ghostscript_killed(monkeypatch):
    started = []
    popen = subprocess.Popen

    def recording_popen(*args, **kwargs):
        process = popen(*args, **kwargs)
        started.append(process)
        return process

    monkeypatch.setattr(analysis_module.subprocess, "Popen", recording_popen)
    with pytest.raises(
        UnreadableDocument, match=r"takes too long to analyse \(the limit is 1 seconds\)"
    ):
        analyse(b"%!PS\n{ 1 pop } loop\n", timeout=1)
    [process] = started
    assert process.returncode is not None  # killed and reaped, not left running


def test_a_pdf_past_its_deadline_is_refused():
    with pytest.raises(UnreadableDocument, match="takes too long to analyse"):
        analyse(make_pdf_pages([Page(marks=("black-text",))]), timeout=0)


def test_a_pdf_over_the_page_limit_is_refused_before_rendering():
    assert analysis_module.MAX_PAGES == 10_000
    with pytest.raises(UnreadableDocument, match=r"too many pages \(10001; the limit is 10000\)"):
        analyse(make_pdf(10_001))


def test_the_page_limit_itself_is_allowed(monkeypatch):
    monkeypatch.setattr(analysis_module, "MAX_PAGES", 4)
    assert analyse(make_pdf(4)).pages == 4
    with pytest.raises(UnreadableDocument, match=r"too many pages \(5; the limit is 4\)"):
        analyse(make_pdf(5))


def test_postscript_over_the_page_limit_is_stopped_and_refused(monkeypatch):
    monkeypatch.setattr(analysis_module, "MAX_PAGES", 4)
    assert analyse(make_postscript([Page()] * 4)).pages == 4
    with pytest.raises(UnreadableDocument, match=r"too many pages \(the limit is 4\)"):
        # Without the limit this would print for ever (and time out instead).
        analyse(b"%!PS\n{ showpage } loop\n", timeout=30)


def test_postscript_forging_page_reports_past_the_limit_is_refused(monkeypatch):
    monkeypatch.setattr(analysis_module, "MAX_PAGES", 4)
    with pytest.raises(UnreadableDocument, match="too many pages"):
        analyse(b"%!PS\n{ (platen-page: 1 1) = } loop\n", timeout=30)


FOUR_PAGES = [Page(marks=("black-text",))] * 3 + [Page(marks=("color-shape",))]


@pytest.mark.parametrize(
    "cut_before",
    [b"%%Page: 3 3", b"%%Page: 4 4", b"%%EOF", b"restore showpage\n%%EOF"],
    ids=["between-pages", "before-the-last", "before-eof", "inside-the-last-page"],
)
def test_truncated_dsc_postscript_is_refused(cut_before):
    document = make_postscript(FOUR_PAGES)
    cut = document[: document.rindex(cut_before)]
    with pytest.raises(UnreadableDocument, match="the PostScript document is truncated"):
        analyse(cut)


# Ghostscript started for ~150 documents, the unit tier's longest test by far (8 CPU-s
# alone, 30 s at load 6): in the integration tier, every cut still tried
# (docs/development.md, "Test time").
@pytest.mark.integration
def test_every_truncation_of_dsc_postscript_is_refused():
    document = make_postscript(FOUR_PAGES)
    assert analyse(document).pages == 4
    for length in range(len(document) - len(b"%%EOF\n") + 1, 0, -7):
        with pytest.raises(UnreadableDocument):
            analyse(document[:length])


def test_dsc_postscript_whose_page_count_disagrees_is_refused():
    document = make_postscript(FOUR_PAGES).replace(b"%%Pages: 4", b"%%Pages: 5")
    with pytest.raises(UnreadableDocument, match=r"it has 5 pages, but 4 print"):
        analyse(document)


def test_dsc_postscript_with_its_page_count_at_the_end():
    document = make_postscript(FOUR_PAGES).replace(b"%%Pages: 4", b"%%Pages: (atend)")
    whole = document.replace(b"%%EOF", b"%%Trailer\n%%Pages: 4\n%%EOF")
    assert (analyse(whole).pages, analyse(whole).color_pages) == (4, (4,))
    with pytest.raises(UnreadableDocument, match="its trailer is missing"):
        analyse(document)  # "(atend)" but no trailer
    with pytest.raises(UnreadableDocument, match="it has 3 pages, but 4 print"):
        analyse(whole.replace(b"%%Pages: 4", b"%%Pages: 3"))


def test_dsc_end_padding_and_unknown_page_counts_are_accepted():
    document = make_postscript(FOUR_PAGES)
    assert analyse(document + b"\r\n\x04").pages == 4  # a driver's ^D after the job
    assert analyse(document.replace(b"%%Pages: 4", b"%%Pages: 0")).pages == 4


def test_plain_postscript_cut_between_pages_cannot_be_told_from_a_shorter_one():
    # Without the Document Structuring Conventions nothing says how long the program
    # was: a cut between two pages prints, and is priced as, the pages before the cut
    # (docs/cups.md, "Known limits"). A cut inside a page is an error, and refused.
    document = make_postscript(FOUR_PAGES).replace(b"%!PS-Adobe-3.0", b"%!PS")
    assert analyse(document[: document.index(b"%%Page: 3 3")]).pages == 2
    with pytest.raises(UnreadableDocument, match="stops with an error"):
        analyse(document[: document.index(b"%%Page: 3 3") - len(b"restore showpage\n") + 3])


def test_a_missing_ghostscript_is_an_installation_error_not_a_refusal(monkeypatch):
    monkeypatch.setattr(analysis_module, "GHOSTSCRIPT", "platen-no-such-gs")
    with pytest.raises(RuntimeError, match="Ghostscript"):
        analyse(make_pdf(1))


@pytest.mark.parametrize(
    "document",
    [b"%!PS\nshowpage undefinedthing\n", b"%!PS\n{ 1 pop } loop\n", b"%!PS\n"],
)
def test_postscript_reasons_carry_no_internals(document):
    with pytest.raises(UnreadableDocument) as info:
        analyse(document, timeout=1)
    reason = str(info.value)
    for internal in ("/tmp", "platen-analysis", "Error:", "Traceback", "gs ", "0x"):
        assert internal not in reason


def test_an_analysis_must_be_consistent():
    with pytest.raises(ValueError):
        Analysis(format="pdf", pages=2, color_pages=(), page_sizes=("A4",))
    with pytest.raises(ValueError):
        Analysis(format="pdf", pages=2, color_pages=(3,), page_sizes=("A4", "A4"))
    with pytest.raises(ValueError):
        Analysis(format="pdf", pages=2, color_pages=(2, 1), page_sizes=("A4", "A4"))
    with pytest.raises(ValueError):
        Analysis(format="pdf", pages=0, color_pages=(), page_sizes=())
    with pytest.raises(ValueError):
        Analysis(format="docx", pages=1, color_pages=(), page_sizes=("A4",))  # type: ignore[arg-type]
