"""What the printer is sent is what Platen charges: raw jobs and PostScript. Pure logic,
except `prepare`, which runs the PostScript conversion.

A raw job (`lp -o raw`, or a raw queue) skips CUPS's filters: the printer gets the
document as it is. Its options were never carried out by a filter, so none of those
that lower a price (N-up, a monochrome colour mode, two-sided printing) is taken from the
client: the document is charged as sent, page by page, in the colours it has, one side a
page, and those options are also taken out of what the real backend passes on to the
printer, so that it prints what is charged. Copies only ever raise a price, and the real
backend is told them, so they stay. Formats Platen cannot analyse are refused by
job-capture, as for any job.

PostScript is a program that may behave differently when it is analysed and when it is
printed. It is run once, here on the print server (see `postscript`), and what it drew is
both what job-capture analyses and what the printer is sent.
"""

from __future__ import annotations

import os
import shlex
from collections import namedtuple
from collections.abc import Mapping

from platen.cups_backend.options import RAW, JobOptions, parse_options
from platen.cups_backend.postscript import (
    CONTENT_TYPES,
    convert,
    is_postscript,
    target_format,
)

# The options, in the names CUPS's argv carries them, whose effect would make a raw job
# cheaper than the document it sends.
PRICE_LOWERING = frozenset(
    {
        "number-up",
        "number-up-layout",
        "page-border",
        "print-color-mode",
        "output-mode",
        "ColorModel",
        "sides",
        "Duplex",
    }
)


def is_raw(env: Mapping[str, str]) -> bool:
    """Whether the document skipped CUPS's filters. Seen with cupsd 2.4: `lp -o raw`
    sets CONTENT_TYPE application/vnd.cups-raw and FINAL_CONTENT_TYPE
    application/octet-stream; a raw queue sets no FINAL_CONTENT_TYPE."""
    return env.get("CONTENT_TYPE") == RAW or not env.get("FINAL_CONTENT_TYPE")


def charge_as_sent(opts: JobOptions) -> JobOptions:
    """The options to charge a raw job with: none that would lower its price."""
    return opts._replace(number_up=1, color_mode="color", duplex=False)


def without_price_options(options: str) -> str:
    """CUPS's option string for the real backend, without PRICE_LOWERING options."""
    kept = {
        name: value for name, value in parse_options(options).items() if name not in PRICE_LOWERING
    }
    return " ".join(f"{name}={shlex.quote(value)}" for name, value in kept.items())


# A named tuple, not a dataclass: see decisions.Decision.
class Sent(namedtuple("Sent", "document options inner_options content_type", defaults=(None,))):
    """The job as the printer will get it, and so as Platen charges it.

    `document`: the file to analyse and to print (a converted one for PostScript).
    `options`: what job-capture is told (JobOptions). `inner_options`: argv[4] for the
    real backend. `content_type`: the FINAL_CONTENT_TYPE to give the real backend, if it
    changed.
    """

    __slots__ = ()


def prepare(
    document: str | os.PathLike[str],
    env: Mapping[str, str],
    ppd: str | None,
    opts: JobOptions,
    options: str,
    *,
    max_bytes: int,
) -> Sent:
    """Decide what is sent and charged; raises `postscript.ConversionFailed`. The
    document sent is `document` itself, or for PostScript a file beside it (a str)."""
    raw = is_raw(env)
    if raw:
        opts = charge_as_sent(opts)
        options = without_price_options(options)
    with open(document, "rb") as file:
        head = file.read(1024)
    if not is_postscript(head):
        return Sent(document, opts, options)
    target = target_format(env, ppd, raw=raw)
    converted = f"{os.fspath(document)}.{target}"
    convert(document, converted, target, max_bytes=max_bytes)
    # The real backend announces the format it is told; a filtered PostScript job stays
    # PostScript, a raw one becomes PDF only for a printer that takes PDF.
    changed = CONTENT_TYPES[target] if raw or target == "pdf" else None
    return Sent(converted, opts, options, changed)
