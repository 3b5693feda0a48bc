"""What a CUPS job asks for, from the backend's arguments, and what CUPS's filters already
did to the document the backend receives. Pure logic."""

from __future__ import annotations

import re
import shlex
from collections import namedtuple
from collections.abc import Mapping

NUMBER_UP = (1, 2, 4, 6, 9, 16)


# Named tuples, not dataclasses: see decisions.Decision.
class JobOptions(
    namedtuple(
        "JobOptions",
        "copies duplex number_up color_mode media origin_host document_name",
        defaults=(1, False, 1, "color", None, None, None),
    )
):
    """What a job asks for: copies (int), duplex (bool), number_up (int), color_mode
    ("color" or "monochrome"), and media, origin_host, document_name (str or None)."""

    __slots__ = ()


def parse_options(text: str) -> dict[str, str]:
    """CUPS passes options as `name=value name2='a value' flag`; a bare flag means true
    and `noflag` false."""
    result: dict[str, str] = {}
    try:
        words = shlex.split(text)
    except ValueError:
        words = text.split()
    for word in words:
        name, sep, value = word.partition("=")
        if sep:
            result[name] = value
        elif name.startswith("no") and len(name) > 2:
            result[name[2:]] = "false"
        else:
            result[name] = "true"
    return result


def job_options(copies: str, options: str) -> JobOptions:
    opts = parse_options(options)
    try:
        n_copies = max(1, min(999, int(copies)))
    except ValueError:
        n_copies = 1
    try:
        number_up = int(opts.get("number-up", "1"))
    except ValueError:
        number_up = 1
    color = opts.get("print-color-mode", opts.get("ColorModel", "color")).lower()
    monochrome = color in ("monochrome", "gray", "grey", "bi-level", "process-monochrome")
    return JobOptions(
        copies=n_copies,
        duplex=opts.get("sides", "one-sided").startswith("two-sided"),
        number_up=number_up if number_up in NUMBER_UP else 1,
        color_mode="monochrome" if monochrome else "color",
        media=opts.get("media") or opts.get("PageSize"),
        origin_host=opts.get("job-originating-host-name"),
        document_name=opts.get("document-name-supplied"),
    )


RAW = "application/vnd.cups-raw"
MANUAL_COPIES = re.compile(r"^\*cupsManualCopies:\s*\"?true", re.IGNORECASE | re.MULTILINE)


class FilterWork(namedtuple("FilterWork", "imposed copies_made")):
    """What CUPS's filter chain did before the backend got the document.

    `imposed`: N-up is already applied (each page of the document is one printed side).
    `copies_made`: the document already holds every copy.
    """

    __slots__ = ()


def filter_work(env: Mapping[str, str], ppd: str | None) -> FilterWork:
    """Read from the backend's environment and the queue's PPD text (None without one).

    A job that went through CUPS's filters always went through pdftopdf (or pstops on
    PostScript queues), which applies number-up: seen with cupsd 2.4 and cups-filters
    1.28, a 4-page PDF printed with number-up=2 reaches the backend as 2 pages, while
    number-up=2 is still in its options. A raw job (a raw queue, which sets no
    FINAL_CONTENT_TYPE, or `lp -o raw`) is passed through untouched.

    Copies: pdftopdf leaves them to the printer (copies stay in argv[4], the document
    holds one) unless the PPD says `*cupsManualCopies: True`, or the printer takes raster,
    whose filters always print every copy into the document (both seen: copies=3 with
    manual copies gives a 12-page document for a 4-page one, argv[4] still 3).
    """
    final = env.get("FINAL_CONTENT_TYPE")
    filtered = bool(final) and env.get("CONTENT_TYPE") != RAW
    if not filtered:
        return FilterWork(imposed=False, copies_made=False)
    manual = bool(ppd and MANUAL_COPIES.search(ppd))
    return FilterWork(imposed=True, copies_made=manual or (final or "").startswith("image/"))


def as_printed(opts: JobOptions, work: FilterWork) -> JobOptions:
    """The options that describe the document as the backend has it: what the filters
    already did is not done (nor charged) again. The copies here are also what the real
    backend is told to print."""
    return opts._replace(
        number_up=1 if work.imposed else opts.number_up,
        copies=1 if work.copies_made else opts.copies,
    )
