"""Ghostscript loaded once in the analysis workers' parent (`resident_ghostscript`).

What must hold: no Ghostscript program is started per document (the parent that loaded
it serves document after document); the answers are those of `gs` started per document
on the known-answer corpora; a hostile document still meets its limits in the
interpreter it inherits, its child is gone with it and the next document is served; and
nothing of the service's environment reaches where Ghostscript now runs.

Real processes (the worker parent, its children, libgs), no server; no duration asserted.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal

import pytest

from platen.job_capture import resident_ghostscript
from platen.job_capture.analysis import (
    Analysis,
    PageMarkers,
    UnreadableDocument,
    analyse,
    ghostscript_setup,
)
from platen.job_capture.isolation import TOO_LONG, IsolatedAnalyser, Limits
from platen.job_capture.resident_ghostscript import ResidentGhostscript
from platen.testing.documents import (
    A3,
    A4,
    A5,
    LETTER,
    MARKS,
    Page,
    make_pdf,
    make_pdf_pages,
    make_postscript,
)

from .. import hostile
from .ghostscript_helpers import a0_with_a_tiny_mark

OUT_OF_MEMORY = "the PostScript document cannot be printed (it stops with an error)"


# What is left in the service's temporary folder after a test is what an analysis leaked.
pytestmark = pytest.mark.usefixtures("own_tmp")


async def running_child(analyser: IsolatedAnalyser) -> int:
    """The pid of the one child running, once its parent has reported it."""
    # Polled: the parent's report is read by the analyser's own task, which has no event.
    for _ in range(3000):
        if analyser._server and analyser._server._pids:
            (child,) = analyser._server._pids.values()
            return child
        await asyncio.sleep(0.01)
    raise AssertionError("no child was reported")


async def test_one_parent_with_ghostscript_loaded_serves_document_after_document(
    tmp_path, monkeypatch
):
    # No `gs` program anywhere on the workers' PATH: every answer below comes from the
    # Ghostscript the parent loaded, so none was started for a document.
    empty = tmp_path / "no-programs"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    analyser = IsolatedAnalyser(Limits(timeout=60))
    colour = make_pdf_pages([Page(marks=("black-text",)), Page(marks=("color-shape",))])
    assert (await analyser.analyse(colour)).color_pages == (2,)
    parent = analyser._server
    assert parent is not None and parent.ghostscript == "libgs"
    assert (await analyser.analyse(make_postscript([Page(marks=("color-text",))]))).pages == 1
    assert (await analyser.analyse(make_pdf(3))).pages == 3
    assert analyser._server is parent and parent.alive  # the same process: reused
    empty.rmdir()


async def test_started_per_document_as_before_when_asked_or_without_libgs(monkeypatch):
    analyser = IsolatedAnalyser(Limits(timeout=60, resident_ghostscript=False))
    assert (await analyser.analyse(make_pdf(2))).pages == 2
    assert analyser._server is not None and analyser._server.ghostscript == "gs"
    monkeypatch.setattr(resident_ghostscript, "LIBRARY", "libgs-platen-missing.so")
    loaded, why = ResidentGhostscript.load()
    assert loaded is None and "cannot be loaded" in why


def known_answer_corpus() -> dict[str, bytes]:
    """Documents whose answers test_colour_analysis knows, in both formats, with paper
    sizes that change the rendering resolution (A3 renders at a lower dpi than A4)."""
    rng = random.Random(20261201)
    mixed = [Page(marks=tuple(rng.sample(MARKS, rng.randrange(0, 4)))) for _ in range(30)]
    every_mark = [Page(marks=(mark,)) for mark in MARKS] + [Page()]
    papers = [
        Page(size=A3, marks=("color-shape",)),
        Page(size=A4, rotate=90, marks=("tiny-color-mark",)),
        Page(size=A3, crop=A4),
        Page(size=LETTER, marks=("gray-shape",)),
        Page(size=A5, marks=("color-image",)),
        Page(size=(2384, 3370), marks=("tiny-color-mark",)),  # A0: rendered at 36 dpi
    ]
    return {
        "every mark, PDF": make_pdf_pages(every_mark),
        "every mark, PostScript": make_postscript(every_mark),
        "random marks, PDF": make_pdf_pages(mixed),
        "random marks, PostScript": make_postscript(mixed),
        "paper sizes, PDF": make_pdf_pages(papers),
        "paper sizes, PostScript": make_postscript(papers[:-1]),
    }


async def test_the_known_answers_are_those_of_gs_started_per_document():
    corpus = known_answer_corpus()
    analyser = IsolatedAnalyser(Limits(timeout=60, workers=2))
    resident = await asyncio.gather(*(analyser.analyse(doc) for doc in corpus.values()))
    assert analyser._server is not None and analyser._server.ghostscript == "libgs"
    for (name, document), answer in zip(corpus.items(), resident, strict=True):
        assert isinstance(answer, Analysis)
        assert answer == analyse(document), name  # `gs` started, in this process
        assert answer.color_pages, name  # each document has colour pages to find


async def test_hostile_documents_meet_their_limits_and_the_next_document_is_served():
    analyser = IsolatedAnalyser(Limits(timeout=3, memory_bytes=384 * 2**20))
    with pytest.raises(UnreadableDocument) as memory:
        await analyser.analyse(hostile.MEMORY_HUNGRY_PS)
    assert str(memory.value) in (OUT_OF_MEMORY, TOO_LONG.format(3))
    with pytest.raises(UnreadableDocument) as endless:
        await analyser.analyse(hostile.INFINITE_LOOP_PS)
    assert str(endless.value) == TOO_LONG.format(3)
    parent = analyser._server
    assert parent is not None and parent.ghostscript == "libgs"
    # A child that crashes inside Ghostscript is a crash, and only its document's.
    crashing = asyncio.create_task(analyser.analyse(hostile.INFINITE_LOOP_PS))
    child = await running_child(analyser)
    os.kill(child, signal.SIGSEGV)
    with pytest.raises(RuntimeError, match="exit status -11"):
        await crashing
    # Each went with its own child; the parent, which never runs a document, serves on.
    assert (await analyser.analyse(make_pdf(2))).pages == 2
    assert analyser._server is parent and parent.alive
    # A parent that dies is replaced by one that loads Ghostscript again.
    parent.process.kill()
    await parent.process.wait()
    assert (await analyser.analyse(make_pdf(1))).pages == 1
    assert analyser._server is not parent and analyser._server.ghostscript == "libgs"


async def test_where_ghostscript_runs_now_the_environment_has_no_secret(monkeypatch):
    monkeypatch.setenv("PLATEN_DATABASE_URL", "postgresql://capture:secret@db/platen")
    monkeypatch.setenv("PLATEN_AMQP_URL", "amqps://capture:secret@broker/")
    monkeypatch.setenv("GS_OPTIONS", "-dNOSAFER")
    analyser = IsolatedAnalyser(Limits(timeout=60))
    endless = asyncio.create_task(analyser.analyse(hostile.INFINITE_LOOP_PS))
    child = await running_child(analyser)  # running the document in libgs
    with open(f"/proc/{child}/environ", "rb") as environ:
        given = dict(item.split(b"=", 1) for item in environ.read().split(b"\0") if item)
    assert set(given) <= {b"PATH", b"LANG", b"TMPDIR"}
    assert b"secret" not in b"".join(given.values())
    endless.cancel()
    await asyncio.gather(endless, return_exceptions=True)


def test_a_resident_interpreter_renders_at_the_resolution_asked_and_only_once(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # where the document and its ink report are written
    # An A0 page with a tiny colour mark: its ink figures differ at 36 and at 100 dpi.
    a0, started = a0_with_a_tiny_mark()  # and what `gs -r36` gives for it
    loaded, how = ResidentGhostscript.load()
    assert loaded is not None, how
    assert loaded.render(a0, 36, ghostscript_setup(False), PageMarkers()) == 0
    assert (tmp_path / "ink.txt").read_text() == started  # the figures of `gs -r36`
    # What a document did to the interpreter (PostScript can redefine much) is not for
    # another document: a second one is refused, never run.
    with pytest.raises(RuntimeError, match="one document"):
        loaded.render(make_pdf(1), 100, "", PageMarkers())
    for leftover in tmp_path.iterdir():
        leftover.unlink()
