"""The PDF interpreter's context made ahead in the analysis workers' parent
(`resident_ghostscript.PDF_CONTEXT_AHEAD`).

What must hold: the answers are those of a context made in the document's child, as
before, on documents of every mark and paper size; a child hands the context made ahead
to its first PDF only, and a second PDF run in the same interpreter (as a collection's
embedded files are) gets a context of its own and its right figures; and the interpreter
is left as it was when the context cannot be made ahead.

Real processes and libgs (each interpreter in a process of its own); no duration asserted.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest

from platen.job_capture.isolation import IsolatedAnalyser, Limits
from platen.testing.documents import A3, A5, LETTER, MARKS, Page, make_pdf_pages, make_postscript

# What is left in the service's temporary folder after a test is what an analysis leaked.
pytestmark = pytest.mark.usefixtures("own_tmp")


def corpus() -> dict[str, bytes]:
    every_mark = [Page(marks=(mark,)) for mark in MARKS] + [Page()]
    papers = [
        Page(size=A3, marks=("color-shape",)),
        Page(size=LETTER, marks=("gray-shape", "black-text")),
        Page(size=A5, marks=("color-image",)),
        Page(size=(2384, 3370), marks=("tiny-color-mark",)),  # A0: another resolution
    ]
    return {
        "every mark, one a page": make_pdf_pages(every_mark),
        "one mark a document": make_pdf_pages([Page(marks=("black-text", "color-text"))]),
        "gray only": make_pdf_pages([Page(marks=("gray-shape", "gray-image", "black-text"))]),
        "paper sizes": make_pdf_pages(papers),
        "PostScript (no PDF context)": make_postscript(every_mark),
    }


async def test_the_answers_are_those_of_a_context_made_per_document():
    documents = corpus()
    ahead = IsolatedAnalyser(Limits(timeout=60, workers=2))
    per_document = IsolatedAnalyser(Limits(timeout=60, workers=2, pdf_context_ahead=False))
    try:
        for name, document in documents.items():
            made_ahead, made_in_child = await asyncio.gather(
                ahead.analyse(document), per_document.analyse(document)
            )
            assert made_ahead == made_in_child, name
        assert ahead._server is not None and ahead._server.ghostscript == "libgs"
    finally:
        for analyser in (ahead, per_document):
            if analyser._server is not None:
                analyser._server.process.kill()


# Run in a process of its own: libgs is loaded once a process. Two PDFs run one after the
# other in one forked interpreter, as a collection's files are; prints what the child saw.
TWO_PDFS = """
import json, os, sys
from platen.job_capture.analysis import ghostscript_setup
from platen.job_capture.resident_ghostscript import PERMIT_FILE_READING, ResidentGhostscript
from platen.job_capture import resident_ghostscript
if sys.argv[1] == "broken":  # the context cannot be made ahead
    resident_ghostscript.PDF_CONTEXT_AHEAD = resident_ghostscript.PDF_CONTEXT_AHEAD.replace(
        "/Begin systemdict", "/Begin platen-undefined systemdict")
loaded, how = ResidentGhostscript.load(pdf_context_ahead=sys.argv[1] != "off")
assert loaded is not None, how
said = []
class Said:
    def feed(self, chunk):
        said.append(chunk.decode())
loaded._markers = Said()
loaded.run_trusted("userdict /PlatenPDFInit known = count = countdictstack = flush")
pid = os.fork()
if pid == 0:
    run = "<< /HWResolution [100 100] >> setpagedevice " + ghostscript_setup(False)
    for name in ("a.pdf", "b.pdf"):
        path = os.path.abspath(name)
        loaded._lib.gsapi_add_control_path(loaded._instance, PERMIT_FILE_READING, path.encode())
        run += f" ({path}) (r) file runpdf"
    ok = loaded.run_trusted(run.replace("\\n", " "))
    os._exit(0 if ok else 1)
_, status = os.waitpid(pid, 0)
print(json.dumps({"parent": said, "status": status, "ink": open("ink.txt").read()}))
"""


def two_pdfs(tmp_path, how: str) -> dict:
    folder = tmp_path / how
    folder.mkdir()
    (folder / "a.pdf").write_bytes(make_pdf_pages([Page(marks=("color-shape", "black-text"))]))
    (folder / "b.pdf").write_bytes(make_pdf_pages([Page(marks=("gray-shape", "black-text"))]))
    run = subprocess.run(
        [sys.executable, "-c", TWO_PDFS, how], cwd=folder, capture_output=True, check=True
    )
    for leftover in folder.iterdir():
        leftover.unlink()
    folder.rmdir()
    return json.loads(run.stdout.decode().splitlines()[-1])


def test_a_second_pdf_in_the_same_child_gets_a_context_of_its_own(tmp_path):
    ahead, per_document = two_pdfs(tmp_path, "on"), two_pdfs(tmp_path, "off")
    assert "".join(ahead["parent"]).split() == ["true", "0", "3"]  # made, stacks as before
    assert "".join(per_document["parent"]).split() == ["false", "0", "3"]
    assert ahead["status"] == per_document["status"] == 0
    # One line a page, both documents (a context used and closed would fail the second).
    lines = ahead["ink"].splitlines()
    assert len(lines) == 2 and all(line.endswith("CMYK OK") for line in lines)
    colour = [sum(float(ink) for ink in line.split()[:3]) for line in lines]
    assert colour[0] > 0 and colour[1] == 0  # a colour shape, then gray
    assert ahead["ink"] == per_document["ink"]


def test_an_interpreter_where_the_context_cannot_be_made_ahead_is_left_as_it_was(tmp_path):
    broken, per_document = two_pdfs(tmp_path, "broken"), two_pdfs(tmp_path, "off")
    assert "".join(broken["parent"]).split() == ["false", "0", "3"]
    assert broken["status"] == 0
    assert broken["ink"] == per_document["ink"]
