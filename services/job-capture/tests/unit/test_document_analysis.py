"""Document analysis (format and page count) and the job state machine.

Colour, paper sizes and PostScript are in test_colour_analysis.py.
"""

import io
import random
import typing
from itertools import pairwise

import pikepdf
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from platen.events.jobs import JobState
from platen.job_capture.analysis import Analysis, UnreadableDocument, analyse
from platen.job_capture.domain import ALLOWED, FINAL, can_move
from platen.testing.documents import make_pdf

# --------------------------------------------------------------------------- analysis


@pytest.mark.parametrize("pages", [1, 3, 100])
def test_page_count_of_generated_pdfs(pages):
    assert analyse(make_pdf(pages)) == Analysis(
        format="pdf", pages=pages, color_pages=(), page_sizes=("A4",) * pages
    )


def test_page_size_does_not_matter():
    assert analyse(make_pdf(2, size=(842, 595))).pages == 2


def test_leading_whitespace_before_the_header_is_tolerated():
    assert analyse(b"  \r\n\t" + make_pdf(3)).pages == 3


def test_empty_document():
    with pytest.raises(UnreadableDocument, match="the document is empty"):
        analyse(b"")


@pytest.mark.parametrize(
    "document",
    [
        b"   \n\t\r\n",
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01",
        b"Hello, this is a plain text file.\n",
        b"%PS-Adobe-3.0\n",
        b"PDF-1.7\n",  # no leading %
        b"%pdf-1.7\n",  # the header is case sensitive
    ],
    ids=["whitespace", "png", "text", "postscript", "no-percent", "lower-case"],
)
def test_documents_that_are_not_pdf(document):
    with pytest.raises(UnreadableDocument, match=r"unsupported document format \(only PDF"):
        analyse(document)


def test_unreadable_document_is_a_value_error():
    assert issubclass(UnreadableDocument, ValueError)


def test_one_page_pdf_truncated_to_40_percent():
    document = make_pdf(1)
    with pytest.raises(UnreadableDocument, match="the PDF cannot be read"):
        analyse(document[: len(document) * 40 // 100])


@pytest.mark.parametrize("pages", [3, 100])
def test_longer_pdfs_truncated_to_40_percent_are_refused(pages):
    # qpdf can rebuild a damaged file and would count only the pages that survived the cut
    # (3 -> 2, 100 -> 77); analyse() refuses such a file rather than price a partial job.
    document = make_pdf(pages)
    with pytest.raises(UnreadableDocument, match="damaged or truncated"):
        analyse(document[: len(document) * 40 // 100])


def test_every_truncation_is_refused():
    document = make_pdf(3)
    # A file that lost only its closing "%%EOF" marker still holds every page, its
    # cross-reference table and trailer; qpdf reads it without a warning, and so do we.
    tail = len(b"\n%%EOF\n")
    assert document.endswith(b"\n%%EOF\n")
    for length in range(len(document) - tail):
        with pytest.raises(UnreadableDocument):
            analyse(document[:length])
    assert analyse(document[: len(document) - tail]).pages == 3


def test_password_protected_pdf_is_refused():
    out = io.BytesIO()
    with pikepdf.open(io.BytesIO(make_pdf(2))) as pdf:
        pdf.save(out, encryption=pikepdf.Encryption(user="secret", owner="owner"))
    with pytest.raises(UnreadableDocument, match="password-protected"):
        analyse(out.getvalue())


def test_reasons_shown_to_users_carry_no_python_internals():
    with pytest.raises(UnreadableDocument) as info:
        analyse(b"%PDF-1.7\n" + b"x" * 100)
    assert "0x" not in str(info.value) and "object at" not in str(info.value)


def test_header_only_pdf():
    with pytest.raises(UnreadableDocument, match="the PDF cannot be read"):
        analyse(b"%PDF-1.7\n%%EOF\n")


def test_random_bytes_after_a_pdf_header():
    rng = random.Random(20240517)
    for _ in range(20):
        document = b"%PDF-1.7" + rng.randbytes(rng.randrange(0, 4096))
        with pytest.raises(UnreadableDocument, match=r"cannot be read|damaged"):
            analyse(document)


@settings(max_examples=200, deadline=None)
@given(tail=st.binary(max_size=2048))
def test_analysis_never_returns_zero_pages_or_leaks_another_error(tail):
    try:
        analysis = analyse(b"%PDF-1.7\n" + tail)
    except UnreadableDocument as exc:
        assert str(exc)
    else:
        assert analysis.pages >= 1


def test_a_pdf_with_no_pages_is_refused():
    # A structurally valid PDF whose page tree is empty.
    with pytest.raises(UnreadableDocument, match="no pages"):
        analyse(make_pdf(0))


# --------------------------------------------------------------------------- state machine

STATES = sorted(typing.get_args(JobState))


def test_the_states_are_the_contract_states():
    assert set(STATES) == {
        "captured",
        "priced",
        "released",
        "printed",
        "denied",
        "failed",
        "cancelled",
        "unconfirmed",
    }
    assert set(FINAL) <= set(STATES)
    for source, targets in ALLOWED.items():
        assert source in STATES
        assert targets <= set(STATES)


@pytest.mark.parametrize("final", sorted(FINAL))
@pytest.mark.parametrize("target", STATES)
def test_final_states_cannot_move(final, target):
    assert not can_move(final, target)


def test_final_states():
    assert {"printed", "denied", "failed", "cancelled"} == FINAL


@pytest.mark.parametrize(
    ("current", "target"),
    [
        ("captured", "priced"),
        ("priced", "released"),
        ("released", "printed"),
        ("captured", "denied"),
        ("captured", "cancelled"),
        ("priced", "denied"),
        ("priced", "cancelled"),
        ("released", "failed"),
        ("released", "unconfirmed"),
        ("unconfirmed", "printed"),
    ],
)
def test_allowed_moves(current, target):
    assert can_move(current, target)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        ("printed", "denied"),
        ("printed", "failed"),
        ("denied", "released"),
        ("failed", "printed"),
        ("cancelled", "captured"),
        ("released", "cancelled"),  # already at the printer
        ("released", "denied"),
        ("priced", "printed"),  # must be released first
        ("captured", "printed"),
        ("captured", "failed"),
        ("priced", "captured"),  # never backwards
        ("released", "priced"),
        ("captured", "captured"),  # no self-moves
        ("priced", "priced"),
        ("captured", "unknown"),
        ("unknown", "captured"),
        ("", "priced"),
        ("unconfirmed", "failed"),  # charged: a late failure does not undo it
        ("unconfirmed", "cancelled"),
        ("priced", "unconfirmed"),  # only a released job's fate can be unknown
    ],
)
def test_refused_moves(current, target):
    assert not can_move(current, target)


def test_the_happy_path_is_a_chain_of_allowed_moves():
    path = ["captured", "priced", "released", "printed"]
    assert all(can_move(a, b) for a, b in pairwise(path))


def test_nothing_moves_back_to_captured():
    assert not any(can_move(state, "captured") for state in STATES)
