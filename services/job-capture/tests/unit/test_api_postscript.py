"""PostScript sent straight to the API (`capture.submit` with source `api`, `capture.analyse`)
is refused: nothing Platen could analyse is sure to be what prints.

A PostScript document is a program, and the colour-space defence (`separations`) replaces
operators by procedures; a document that takes `setcolorspace` by value (`//setcolorspace`,
or `load` and then a procedure built with it) pushes the procedure where the operator would
run, so it sets no colour space in the analysis and its spot colour on the printer:
`[/Separation /Black /DeviceRGB {red}]` was analysed as a blank page and printed red. A CUPS
job's PostScript is run once on the print server and what it drew is both analysed and
printed; an API job's document is never sent to a printer by Platen (the submitter prints
its own copy), so distilling it here would change what is analysed, not what prints. See
docs/security.md, "PostScript from the API".

Real Ghostscript and the real isolated analysis; the job store and context are fakes.
"""

from __future__ import annotations

import base64
import subprocess
import uuid

import pytest

import platen.events.jobs as ev
from platen.job_capture import analyse_only, handlers
from platen.job_capture.analysis import Analysis, analyse
from platen.job_capture.domain import POSTSCRIPT_FROM_API
from platen.messaging.fakes import FakeContext
from platen.testing.documents import make_pdf

from .fakes import FakeStore

SEP = "[/Separation /Black /DeviceRGB {pop 1 0 0}]"
BOX = "100 100 200 200 rectfill"


def postscript(line: str) -> bytes:
    return f"%!PS\n{line}\nshowpage\n".encode()


# Each draws one red square on a printer. Where setcolorspace is a procedure (the analysis)
# the space is never set: `cleartomark` drops it with the pushed procedure, and `1 setcolor`
# in DeviceGray paints white.
BY_VALUE = {
    "//setcolorspace": postscript(f"mark {SEP} //setcolorspace cleartomark 1 setcolor {BOX}"),
    "load, in a procedure built with it": postscript(
        f"mark [ {SEP} /setcolorspace load ] cvx exec cleartomark 1 setcolor {BOX}"
    ),
    "//setcolorspace in a bound procedure": postscript(
        f"/cs {{ mark exch //setcolorspace cleartomark }} bind def {SEP} cs 1 setcolor {BOX}"
    ),
}


RGB_PRINTER = ["gs", "-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-sDEVICE=ppmraw", "-r10"]


def red_pixels_as_printed(document: bytes) -> int:
    """How many red pixels an RGB printer prints: Ghostscript as it is, to RGB pixels."""
    out = subprocess.run(
        [*RGB_PRINTER, "-sOutputFile=-", "-"],
        input=document,
        capture_output=True,
        check=True,
    ).stdout
    pixels = out.split(b"\n", 4)[4]  # P6, Ghostscript's comment, size, depth
    return sum(
        1
        for i in range(0, len(pixels) - 2, 3)
        if pixels[i] > 200 and pixels[i + 1] < 50 and pixels[i + 2] < 50
    )


def submission(document: bytes, source: str) -> ev.SubmitJob:
    return ev.SubmitJob(
        job_id=uuid.uuid4(),
        user="alice",
        printer="lab",
        document_name="a.ps",
        document=base64.b64encode(document),
        source=source,
    )


async def submitted(document: bytes, source: str = "api") -> tuple[FakeStore, FakeContext]:
    """The document submitted as the dispatcher does it: analysed first, then recorded."""
    cmd = submission(document, source)
    store = FakeStore()
    sender = "platen-admin" if source == "api" else "platen-print-server.test"
    ctx = FakeContext(store=store, user_id=sender, producer="job-capture")
    ctx.prepared = await handlers.analyse_submission(cmd)
    await handlers.on_submit(ctx, cmd)
    return store, ctx


@pytest.mark.parametrize("name", BY_VALUE)
async def test_postscript_from_the_api_is_never_charged_as_black_and_white(name):
    document = BY_VALUE[name]
    assert red_pixels_as_printed(document) > 0  # a printer prints it red
    assert analyse(document).color_pages == ()  # the analysis sees no colour: the hole
    store, ctx = await submitted(document)
    [job] = store.jobs.values()
    [event] = ctx.messages()
    # Refused, with the reason the submitter is told; nothing to price, nothing charged.
    assert (job.state, job.reason, job.document) == ("denied", POSTSCRIPT_FROM_API, None)
    assert isinstance(event, ev.JobDenied) and event.reason == POSTSCRIPT_FROM_API
    assert store.spooled == {}


async def test_plain_postscript_from_the_api_is_refused_too_and_not_run(monkeypatch):
    # Refused for what it is, before any analysis: even a harmless program is a program.
    analysed: list[bytes] = []

    async def analyser(document: bytes, owner: str = "") -> Analysis:
        analysed.append(document)
        return Analysis(format="postscript", pages=1, color_pages=(), page_sizes=("A4",))

    monkeypatch.setattr(handlers, "analyse", analyser)
    for document in (postscript(f"0 setgray {BOX}"), b"\n\t %!PS-Adobe-3.0\n" + BOX.encode()):
        assert await handlers.analyse_submission(submission(document, "api")) == (
            POSTSCRIPT_FROM_API
        )
    assert analysed == []


async def test_a_quote_for_postscript_is_refused_with_the_same_reason():
    query = ev.AnalyseDocument(document=base64.b64encode(BY_VALUE["//setcolorspace"]))
    assert await analyse_only.analyse_for_quote(query) == POSTSCRIPT_FROM_API


async def test_a_print_servers_postscript_is_still_analysed():
    # What a CUPS backend sends was run once on the print server (ps2write for a PostScript
    # printer): it is what prints, and it is analysed as before.
    store, _ = await submitted(postscript(f"1 0 0 setrgbcolor {BOX}"), source="cups")
    [job] = store.jobs.values()
    assert (job.state, job.document.color_pages) == ("captured", [1])


async def test_a_pdf_from_the_api_is_still_analysed():
    store, _ = await submitted(make_pdf(2))
    [job] = store.jobs.values()
    assert (job.state, job.document.pages) == ("captured", 2)
