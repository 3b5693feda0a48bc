"""What the printer produces for one copy of an analysed document. Pure logic, no I/O.

N-up puts `number_up` consecutive logical pages on one printed side; duplex puts two
sides on one sheet. Pricing needs the sides of one copy grouped by paper and colour.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from platen.job_capture.analysis import Analysis

NUMBER_UP = (1, 2, 4, 6, 9, 16)
COLOR_MODES = ("color", "monochrome")


@dataclass(frozen=True)
class Layout:
    """One copy as printed.

    `side_groups` holds (paper, colour, count) sorted by paper then colour (gray first);
    `paper_sizes` counts logical pages per paper size, before N-up.
    """

    sides: int
    sheets: int
    side_groups: tuple[tuple[str, bool, int], ...]
    paper_sizes: dict[str, int] = field(hash=False)


def layout(analysis: Analysis, *, duplex: bool, number_up: int, color_mode: str) -> Layout:
    if not isinstance(analysis, Analysis):
        raise TypeError("layout needs an Analysis")
    if not isinstance(duplex, bool):
        raise ValueError(f"duplex must be true or false, not {duplex!r}")
    if not isinstance(number_up, int) or isinstance(number_up, bool) or number_up not in NUMBER_UP:
        raise ValueError(f"number-up must be one of {', '.join(map(str, NUMBER_UP))}")
    if color_mode not in COLOR_MODES:
        raise ValueError(f"colour mode must be one of {', '.join(COLOR_MODES)}")
    color_pages = set(analysis.color_pages) if color_mode == "color" else set()
    groups: Counter[tuple[str, bool]] = Counter()
    for first in range(1, analysis.pages + 1, number_up):
        on_side = range(first, min(first + number_up, analysis.pages + 1))
        # A side takes its paper from its first page: N-up scales the others onto it.
        paper = analysis.page_sizes[first - 1]
        groups[paper, any(page in color_pages for page in on_side)] += 1
    sides = sum(groups.values())
    return Layout(
        sides=sides,
        sheets=(sides + 1) // 2 if duplex else sides,
        side_groups=tuple(
            (paper, color, count) for (paper, color), count in sorted(groups.items())
        ),
        paper_sizes=dict(sorted(Counter(analysis.page_sizes).items())),
    )
