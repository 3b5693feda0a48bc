"""Sides, sheets and side groups of one copy after N-up and duplex. Pure logic."""

import math
import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from platen.events.jobs import JobCaptured, SideGroup
from platen.job_capture.analysis import Analysis
from platen.job_capture.layout import NUMBER_UP, Layout, layout


def doc(sizes: str | list[str], color: tuple[int, ...] = (), pages: int | None = None) -> Analysis:
    """An analysis: `sizes` is one paper for every page (with `pages`) or one per page."""
    page_sizes = tuple([sizes] * (pages or 1) if isinstance(sizes, str) else sizes)
    return Analysis(format="pdf", pages=len(page_sizes), color_pages=color, page_sizes=page_sizes)


# --------------------------------------------------------------------------- worked by hand

A4_5 = doc("A4", color=(3,), pages=5)  # five A4 pages, the third in colour


@pytest.mark.parametrize(
    ("analysis", "duplex", "number_up", "mode", "sides", "sheets", "groups"),
    [
        # One page per side: every page a side; colour page 3 is one colour side.
        (A4_5, False, 1, "color", 5, 5, [("A4", False, 4), ("A4", True, 1)]),
        (A4_5, True, 1, "color", 5, 3, [("A4", False, 4), ("A4", True, 1)]),
        # Printed in monochrome, nothing is colour.
        (A4_5, True, 1, "monochrome", 5, 3, [("A4", False, 5)]),
        # 2-up: sides [1 2] [3 4] [5]; the second holds colour page 3.
        (A4_5, False, 2, "color", 3, 3, [("A4", False, 2), ("A4", True, 1)]),
        (A4_5, True, 2, "color", 3, 2, [("A4", False, 2), ("A4", True, 1)]),
        (A4_5, True, 2, "monochrome", 3, 2, [("A4", False, 3)]),
        # 4-up: sides [1-4] [5]; duplex puts both on one sheet.
        (A4_5, True, 4, "color", 2, 1, [("A4", False, 1), ("A4", True, 1)]),
        # 6, 9 and 16-up: all five pages on one side, which holds the colour page.
        (A4_5, False, 6, "color", 1, 1, [("A4", True, 1)]),
        (A4_5, True, 9, "color", 1, 1, [("A4", True, 1)]),
        (A4_5, True, 16, "monochrome", 1, 1, [("A4", False, 1)]),
        # 33 pages 16-up: sides [1-16] [17-32] [33]; colour page 33 alone on the last.
        (doc("A4", (33,), 33), True, 16, "color", 3, 2, [("A4", False, 2), ("A4", True, 1)]),
        # 7 pages 6-up: [1-6] [7].
        (
            doc("Letter", (6,), 7),
            False,
            6,
            "color",
            2,
            2,
            [("Letter", False, 1), ("Letter", True, 1)],
        ),
        # 9 pages 9-up, colour everywhere: one colour side.
        (doc("A4", tuple(range(1, 10)), 9), True, 9, "color", 1, 1, [("A4", True, 1)]),
        # One page, duplex: one side, one sheet.
        (doc("A3"), True, 1, "color", 1, 1, [("A3", False, 1)]),
        # Two pages, duplex: both sides of one sheet.
        (doc("A4", (2,), 2), True, 1, "color", 2, 1, [("A4", False, 1), ("A4", True, 1)]),
    ],
)
def test_worked_examples(analysis, duplex, number_up, mode, sides, sheets, groups):
    result = layout(analysis, duplex=duplex, number_up=number_up, color_mode=mode)
    assert (result.sides, result.sheets, list(result.side_groups)) == (sides, sheets, groups)


MIXED = doc(["A4", "A3", "A3", "Letter", "A4", "A4"], color=(2, 4))


def test_mixed_paper_one_page_per_side():
    result = layout(MIXED, duplex=False, number_up=1, color_mode="color")
    assert result == Layout(
        sides=6,
        sheets=6,
        side_groups=(("A3", False, 1), ("A3", True, 1), ("A4", False, 3), ("Letter", True, 1)),
        paper_sizes={"A3": 2, "A4": 3, "Letter": 1},
    )


def test_mixed_paper_two_up_takes_each_sides_first_page():
    # Sides [A4 A3*] [A3 Letter*] [A4 A4]: the first two are colour, on A4 and A3.
    result = layout(MIXED, duplex=True, number_up=2, color_mode="color")
    assert result == Layout(
        sides=3,
        sheets=2,
        side_groups=(("A3", True, 1), ("A4", False, 1), ("A4", True, 1)),
        paper_sizes={"A3": 2, "A4": 3, "Letter": 1},  # logical pages: not changed by N-up
    )


def test_mixed_paper_in_monochrome():
    result = layout(MIXED, duplex=True, number_up=1, color_mode="monochrome")
    assert result.side_groups == (("A3", False, 2), ("A4", False, 3), ("Letter", False, 1))
    assert result.sheets == 3


@pytest.mark.parametrize(
    ("copies", "duplex", "number_up", "total_sides", "total_sheets", "colour_sides"),
    [
        # Five A4 pages, page 3 in colour, per copy as in test_worked_examples; by copies.
        (1, False, 1, 5, 5, 1),
        (3, False, 1, 15, 15, 3),
        (3, True, 1, 15, 9, 3),  # 3 sheets a copy: copies never share a sheet
        (2, True, 2, 6, 4, 2),
        (10, True, 4, 20, 10, 10),
        (7, False, 16, 7, 7, 7),
    ],
)
def test_copies_multiply_one_copy_in_the_contract(
    copies, duplex, number_up, total_sides, total_sheets, colour_sides
):
    result = layout(A4_5, duplex=duplex, number_up=number_up, color_mode="color")
    event = captured(A4_5, result, copies=copies, duplex=duplex, number_up=number_up)
    assert (event.total_sides, event.total_sheets) == (total_sides, total_sheets)
    assert sum(g.count for g in event.side_groups if g.color) * copies == colour_sides


def captured(analysis: Analysis, result: Layout, **job) -> JobCaptured:
    return JobCaptured(
        job_id=uuid.uuid4(),
        user="alice",
        printer="lab-1",
        document_name="report.pdf",
        pages=analysis.pages,
        size_bytes=1000,
        captured_at=datetime.now(UTC),
        format=analysis.format,
        color_pages=list(analysis.color_pages),
        paper_sizes=dict(result.paper_sizes),
        sides=result.sides,
        sheets=result.sheets,
        side_groups=[SideGroup(paper=p, color=c, count=n) for p, c, n in result.side_groups],
        analysis_ms=analysis.analysis_ms,
        **job,
    )


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize("number_up", [0, 3, 5, 8, 32, -1, 2.0, True, "2", None])
def test_number_up_must_be_one_the_printer_knows(number_up):
    with pytest.raises(ValueError, match="number-up must be one of 1, 2, 4, 6, 9, 16"):
        layout(A4_5, duplex=False, number_up=number_up, color_mode="color")


@pytest.mark.parametrize("mode", ["colour", "grayscale", "COLOR", "", None])
def test_colour_mode_must_be_known(mode):
    with pytest.raises(ValueError, match="colour mode must be one of color, monochrome"):
        layout(A4_5, duplex=False, number_up=1, color_mode=mode)


@pytest.mark.parametrize("duplex", [1, 0, "yes", None])
def test_duplex_must_be_a_boolean(duplex):
    with pytest.raises(ValueError, match="duplex"):
        layout(A4_5, duplex=duplex, number_up=1, color_mode="color")


def test_layout_needs_an_analysis():
    with pytest.raises(TypeError):
        layout({"pages": 3}, duplex=False, number_up=1, color_mode="color")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- properties

PAPERS = ["A4", "A3", "Letter", "A5", "100x150mm"]


@st.composite
def analyses(draw) -> Analysis:
    pages = draw(st.integers(min_value=1, max_value=120))
    sizes = draw(st.lists(st.sampled_from(PAPERS), min_size=pages, max_size=pages))
    color = draw(st.sets(st.integers(min_value=1, max_value=pages)))
    return Analysis(
        format=draw(st.sampled_from(["pdf", "postscript"])),
        pages=pages,
        color_pages=tuple(sorted(color)),
        page_sizes=tuple(sizes),
        analysis_ms=draw(st.integers(min_value=0, max_value=10_000)),
    )


jobs = st.fixed_dictionaries(
    {
        "duplex": st.booleans(),
        "number_up": st.sampled_from(NUMBER_UP),
        "color_mode": st.sampled_from(["color", "monochrome"]),
    }
)


@settings(max_examples=300, deadline=None)
@given(analysis=analyses(), job=jobs)
def test_totals_are_consistent(analysis, job):
    result = layout(analysis, **job)
    assert result.sides == math.ceil(analysis.pages / job["number_up"])
    assert sum(count for _, _, count in result.side_groups) == result.sides
    assert all(count >= 1 for _, _, count in result.side_groups)
    if job["duplex"]:
        assert result.sheets == math.ceil(result.sides / 2)
    else:
        assert result.sheets == result.sides
    assert sum(result.paper_sizes.values()) == analysis.pages
    assert set(result.paper_sizes) == set(analysis.page_sizes)
    assert {paper for paper, _, _ in result.side_groups} <= set(analysis.page_sizes)
    keys = [(paper, color) for paper, color, _ in result.side_groups]
    assert keys == sorted(set(keys))  # one group per paper and colour, in order


@settings(max_examples=200, deadline=None)
@given(analysis=analyses(), job=jobs)
def test_colour_sides(analysis, job):
    result = layout(analysis, **job)
    colour_sides = sum(count for _, color, count in result.side_groups if color)
    if job["color_mode"] == "monochrome" or not analysis.color_pages:
        assert colour_sides == 0
    else:
        # At least one colour side, and no more than there are colour pages or sides.
        assert 1 <= colour_sides <= min(len(analysis.color_pages), result.sides)
        if job["number_up"] == 1:
            assert colour_sides == len(analysis.color_pages)


@settings(max_examples=200, deadline=None)
@given(analysis=analyses(), other=analyses(), job=jobs)
def test_the_result_depends_only_on_the_inputs(analysis, other, job):
    first = layout(analysis, **job)
    layout(other, **job)  # no state carried from one call to the next
    twin = Analysis(
        format=analysis.format,
        pages=analysis.pages,
        color_pages=tuple(analysis.color_pages),
        page_sizes=tuple(analysis.page_sizes),
        analysis_ms=analysis.analysis_ms + 1,  # how long analysis took does not matter
    )
    assert layout(twin, **job) == first
    assert layout(analysis, **job) == first


@settings(max_examples=100, deadline=None)
@given(analysis=analyses(), job=jobs, copies=st.integers(min_value=1, max_value=999))
def test_every_layout_fits_the_contract(analysis, job, copies):
    result = layout(analysis, **job)
    event = captured(analysis, result, copies=copies, **job)
    assert event.total_sides == result.sides * copies
    assert event.total_sheets == result.sheets * copies
