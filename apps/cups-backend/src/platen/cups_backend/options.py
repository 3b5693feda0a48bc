"""What a CUPS job asks for, from the backend's arguments. Pure logic."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

NUMBER_UP = (1, 2, 4, 6, 9, 16)


@dataclass(frozen=True)
class JobOptions:
    copies: int = 1
    duplex: bool = False
    number_up: int = 1
    color_mode: str = "color"
    media: str | None = None
    origin_host: str | None = None
    document_name: str | None = None


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
