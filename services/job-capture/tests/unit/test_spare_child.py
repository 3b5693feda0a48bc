"""A spare analysis child (`analysis_worker.spare`): forked ahead of its document, its
Ghostscript device open, waiting for one request.

What must hold: the next document runs in the spare that waited for it, and a new spare
is forked after it; a spare has read no document and has none of its limits until its
request comes, then the request's; a spare that dies while waiting is replaced, and one
that is gone when its request is handed over is not used; a spare ends with its parent;
without spares each document's child is forked when it comes, as before.

Real processes (the worker parent, its children, libgs), no server; no duration asserted.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

import pytest

from platen.job_capture.analysis import (
    PageMarkers,
    UnreadableDocument,
    ghostscript_setup,
)
from platen.job_capture.analysis_worker import Spare, hand_over
from platen.job_capture.isolation import IsolatedAnalyser, Limits
from platen.job_capture.resident_ghostscript import ResidentGhostscript
from platen.testing.documents import Page, make_pdf, make_pdf_pages

from .. import hostile
from .ghostscript_helpers import a0_with_a_tiny_mark
from .processes import address_space_limit, children, state

MEMORY = 384 * 2**20


# What is left in the service's temporary folder after a test is what an analysis leaked.
pytestmark = pytest.mark.usefixtures("own_tmp")


async def until(condition, what: str):
    """Polled: the worker parent forks its spare after answering, and says nothing of it."""
    for _ in range(1000):
        if result := condition():
            return result
        await asyncio.sleep(0.01)
    raise AssertionError(f"never: {what}")


async def a_spare(parent: int, other_than: set[int] = frozenset()) -> tuple[int]:
    """The spare waiting, once it is the parent's only child (besides `other_than`): the
    child that ran the last document may still be exiting after its answer came back, and
    it has its request's limits where a spare has none."""

    def waiting() -> tuple[int] | None:
        found = children(parent) - other_than
        if len(found) != 1:
            return None
        try:
            return tuple(found) if address_space_limit(*found) == "unlimited" else None
        except FileNotFoundError:  # it ended meanwhile
            return None

    return await until(waiting, "a spare is forked")


async def running_child(analyser: IsolatedAnalyser) -> int:
    def reported():
        pids = analyser._server._pids.values() if analyser._server else ()
        return next(iter(pids), 0)

    return await until(reported, "the running child's pid is reported")


async def test_the_next_document_runs_in_the_spare_that_waited_for_it():
    analyser = IsolatedAnalyser(Limits(timeout=60, memory_bytes=MEMORY))
    assert (await analyser.analyse(make_pdf(1))).pages == 1
    parent = analyser._server.process.pid
    (spare,) = await a_spare(parent)
    # Waiting: no document read, in the parent's folder, none of a request's limits.
    assert os.readlink(f"/proc/{spare}/cwd") == os.readlink(f"/proc/{parent}/cwd")
    opened = [os.readlink(f"/proc/{spare}/fd/{fd}") for fd in os.listdir(f"/proc/{spare}/fd")]
    assert not any("platen-analysis-" in path for path in opened), opened
    assert address_space_limit(spare) == "unlimited"
    # Its own group (the service's kill takes it whole): polled, since the test may see
    # the spare between its fork and the parent's setpgid, before any request is sent.
    await until(lambda: os.getpgid(spare) == spare, "the spare leads its own group")

    endless = asyncio.create_task(analyser.analyse(hostile.INFINITE_LOOP_PS))
    assert await running_child(analyser) == spare
    # It took the request's limits; no new spare is forked while it runs.
    await until(lambda: address_space_limit(spare) == str(MEMORY), "the limit is set")
    assert children(parent) == {spare}
    endless.cancel()
    await asyncio.gather(endless, return_exceptions=True)
    # Once its child has ended, a new spare waits for the next document.
    (new,) = await a_spare(parent, other_than={spare})
    assert new != spare and address_space_limit(new) == "unlimited"
    assert (await analyser.analyse(make_pdf(3))).pages == 3  # run by `new`
    await until(lambda: new not in children(parent), "the spare ends after its document")


async def test_a_spare_that_dies_while_waiting_is_replaced_after_the_next_document():
    analyser = IsolatedAnalyser(Limits(timeout=60))
    colour = make_pdf_pages([Page(marks=("black-text",)), Page(marks=("color-shape",))])
    assert (await analyser.analyse(colour)).color_pages == (2,)
    parent = analyser._server.process.pid
    (spare,) = await a_spare(parent)
    os.kill(spare, signal.SIGKILL)
    await until(lambda: state(spare) == "gone", "the parent reaps it")
    assert not children(parent)  # not replaced at once: a spare dying at start would loop
    # The next document gets a child forked for it; after it, a spare waits again.
    assert (await analyser.analyse(colour)).color_pages == (2,)
    (replacement,) = await a_spare(parent)
    assert replacement != spare
    assert analyser._server.process.pid == parent  # the parent was not replaced


def test_a_spare_gone_before_its_request_is_not_handed_it():
    read_end, write_end = os.pipe()
    os.close(read_end)  # what a spare that died leaves: a pipe nobody reads
    assert hand_over(Spare(pid=0, requests=write_end), {"id": 1, "dir": "/nowhere"}) is False
    with pytest.raises(OSError):  # and its end is closed, not leaked
        os.fstat(write_end)
    read_end, write_end = os.pipe()
    assert hand_over(Spare(pid=0, requests=write_end), {"id": 2}) is True
    assert os.read(read_end, 100) == b'{"id": 2}\n'
    assert os.read(read_end, 100) == b""  # one request, then the end: the spare's only one
    os.close(read_end)


async def test_a_waiting_spare_ends_with_its_parent():
    analyser = IsolatedAnalyser(Limits(timeout=60))
    assert (await analyser.analyse(make_pdf(1))).pages == 1
    first = analyser._server
    (spare,) = await a_spare(first.process.pid)
    first.process.kill()
    await first.process.wait()
    await until(lambda: state(spare) in ("Z", "gone"), "the orphaned spare ends")
    assert (await analyser.analyse(make_pdf(2))).pages == 2  # a new parent, and spare
    assert analyser._server is not first


async def test_without_spares_a_child_is_forked_per_document_when_it_comes():
    analyser = IsolatedAnalyser(Limits(timeout=60, spare_child=False))
    assert (await analyser.analyse(make_pdf(2))).pages == 2
    parent = analyser._server.process.pid
    await until(lambda: not children(parent), "the document's child ends")
    assert (await analyser.analyse(make_pdf(1))).pages == 1
    assert not children(parent)  # nothing forked ahead


def test_an_interpreter_prepared_at_one_resolution_renders_at_the_one_asked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # An A0 page with a tiny colour mark renders at 36 dpi, not at the prepared 100: its
    # ink figures differ between the two.
    a0, started = a0_with_a_tiny_mark()  # and what `gs -r36` gives for it
    loaded, how = ResidentGhostscript.load()
    assert loaded is not None, how
    assert loaded.prepare(100)
    assert loaded.render(a0, 36, ghostscript_setup(False), PageMarkers()) == 0
    assert (tmp_path / "ink.txt").read_text() == started
    with pytest.raises(RuntimeError, match="one document"):
        loaded.prepare(100)  # what a document left is not prepared for another
    for leftover in tmp_path.iterdir():
        leftover.unlink()


def heap_flags(pid: int) -> list[set[str]]:
    """The VmFlags of each part of process `pid`'s heap (`hg`: asked for in huge pages)."""
    flags, in_heap = [], False
    with open(f"/proc/{pid}/smaps") as smaps:
        for line in smaps:
            if "-" in line.split()[0]:
                in_heap = line.rstrip().endswith("[heap]")
            elif in_heap and line.startswith("VmFlags:"):
                flags.append(set(line.split()[1:]))
    return flags


# A page only if Ghostscript collects its garbage every 64 MB; else it stops with an error.
COLLECTS_EVERY_64_MB = b"""%!PS
currentuserparams /VMThreshold get 67108864 ne { platen-threshold-not-set } if
newpath 100 100 moveto 200 200 lineto stroke showpage
"""


@pytest.mark.parametrize("fewer_faults", [True, False])
async def test_children_allocate_anew_in_huge_pages_and_collect_garbage_every_64_mb(
    fewer_faults,
):
    analyser = IsolatedAnalyser(Limits(timeout=60, fewer_faults=fewer_faults))
    colour = make_pdf_pages([Page(marks=("color-text",)), Page(marks=("gray-shape",))])
    assert (await analyser.analyse(colour)).color_pages == (1,)
    parent = analyser._server.process.pid
    assert any("hg" in flags for flags in heap_flags(parent)) is fewer_faults
    (spare,) = await a_spare(parent)
    assert any("hg" in flags for flags in heap_flags(spare)) is fewer_faults  # inherited
    if fewer_faults:
        assert (await analyser.analyse(COLLECTS_EVERY_64_MB)).pages == 1
    else:
        with pytest.raises(UnreadableDocument, match="stops with an error"):
            await analyser.analyse(COLLECTS_EVERY_64_MB)


@pytest.mark.parametrize("freeze", [True, False])
def test_a_child_is_forked_with_the_parents_objects_out_of_the_collectors_reach(freeze):
    # In a fresh interpreter: forking pytest's own process is not this test's business.
    script = (
        "import gc, os, sys; from platen.job_capture.analysis_worker import frozen_fork;"
        " held = [[n] for n in range(10000)];"
        f" pid = frozen_fork({freeze});"
        " os._exit(min(gc.get_freeze_count(), 100000) // 1000) if pid == 0 else None;"
        " sys.exit(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))"
    )
    ran = subprocess.run([sys.executable, "-c", script], check=False)
    # The child's frozen objects (in thousands): the parent's 10,000 lists and more, or none.
    assert (ran.returncode >= 10) if freeze else (ran.returncode == 0)
