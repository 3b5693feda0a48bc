"""What several of the analysis tests ask of real Ghostscript: a walk of everything a
document can read, and the figures `gs -r36` gives a page whose answer depends on the
resolution. One copy of each, so that a change to the walk or to the page is made once."""

from __future__ import annotations

import functools
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path

from platen.job_capture.analysis import ghostscript_options, ghostscript_setup
from platen.testing.documents import Page, make_pdf_pages

# Walks everything a document can read (dictionaries and procedures, from every root
# it can name) and prints each operator it finds among NAMES.
SCAN = """
/names << NAMES >> def
/seen 100000 dict def
/look {
  dup type /operatortype eq {
    dup 128 string cvs cvn names exch known { (found: ) print dup == } if pop
  } {
    dup type dup /arraytype eq exch dup /packedarraytype eq exch /dicttype eq or or {
      dup rcheck { seen 1 index known not } { false } ifelse {
        seen 1 index true put
        dup type /dicttype eq { { look look } forall } { { look } forall } ifelse
      } { pop } ifelse
    } { pop } ifelse
  } ifelse
} bind def
systemdict look userdict look globaldict look errordict look $error look
statusdict look 1183615869 internaldict look currentpagedevice look
(scanned) =
"""


def scan(names: Iterable[str], setup: str, before: str = "") -> list[str]:
    """The operators among `names` that a PostScript document finds among everything it
    can read, in the rendering it gets after `setup` and `before` (its own first steps)."""
    program = before + SCAN.replace("NAMES", " ".join(f"/{name} 0" for name in names))
    run = subprocess.run(
        ["gs", *ghostscript_options("/dev/null"), "-r36", "-c", *setup.splitlines(), "-"],
        input=program.encode(),
        capture_output=True,
        check=True,
    )
    lines = run.stdout.decode().splitlines()
    assert "scanned" in lines  # the walk ran to its end
    return [line.removeprefix("found: ") for line in lines if line.startswith("found")]


@functools.cache
def a0_with_a_tiny_mark() -> tuple[bytes, str]:
    """An A0 page with a tiny colour mark, whose ink figures differ at 36 and at 100 dpi,
    and the figures `gs` started for it gives at 36 dpi. Once per test process: two
    modules compare a resident interpreter with them."""
    a0 = make_pdf_pages([Page(size=(2384, 3370), marks=("tiny-color-mark", "black-text"))])
    with tempfile.TemporaryDirectory(prefix="platen-a0-") as tmp:
        document, figures = Path(tmp, "a0.pdf"), Path(tmp, "started.txt")
        document.write_bytes(a0)
        # To a file: stdout has Ghostscript's warning about -dWRITESYSTEMDICT too.
        subprocess.run(
            [
                "gs",
                *ghostscript_options(str(figures)),
                "-r36",
                "-c",
                *ghostscript_setup(False).splitlines(),
                "-f",
                str(document),
            ],
            capture_output=True,
            check=True,
        )
        return a0, figures.read_text()
