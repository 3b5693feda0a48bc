"""The isolated analysis (`isolation`): each document in a worker process of its own, with
a scrubbed environment, its own temporary folder, limits and one deadline; the hostile
corpus (tests/hostile.py) is denied with a reason, and one owner's hostile documents do
not hold up another's.

Real processes (Python, Ghostscript), no server. Deadlines are short here so the corpus
takes seconds; what is asserted is the reason each document gets and the order in which
things finish, never a duration (bench/hostile_analysis.py measures those).
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile

import pytest

from platen.job_capture import isolation
from platen.job_capture.analysis import Analysis, UnreadableDocument
from platen.job_capture.analysis_worker import TOO_MUCH_MEMORY
from platen.job_capture.isolation import BUSY, BUSY_OWNER, TOO_LONG, IsolatedAnalyser, Limits
from platen.testing.documents import make_pdf

from .. import hostile
from .processes import state

DEADLINE = 4.0
LIMITS = Limits(timeout=DEADLINE, memory_bytes=384 * 2**20, workers=len(hostile.CASES))
OUT_OF_MEMORY = "the PostScript document cannot be printed (it stops with an error)"


# What is left in the service's temporary folder after a test is what an analysis leaked.
pytestmark = pytest.mark.usefixtures("own_tmp")


async def test_workers_get_only_path_lang_and_tmpdir_and_each_document_its_own_folder(
    monkeypatch,
):
    monkeypatch.setenv("PLATEN_DATABASE_URL", "postgresql://capture:secret@db/platen")
    monkeypatch.setenv("PLATEN_AMQP_URL", "amqps://capture:secret@broker/")
    monkeypatch.setenv("GS_OPTIONS", "-dNOSAFER")
    analyser = IsolatedAnalyser(LIMITS)
    assert (await analyser.analyse(make_pdf(1))).pages == 1
    parent = analyser._server.process.pid
    with open(f"/proc/{parent}/environ", "rb") as environ:
        given = dict(item.split(b"=", 1) for item in environ.read().split(b"\0") if item)
    assert given == {
        b"PATH": os.environ["PATH"].encode(),
        b"LANG": b"C.UTF-8",
        b"TMPDIR": tempfile.gettempdir().encode(),
    }
    # (the fixture checks that the document's folder is gone)


def test_the_worker_sets_its_limits_hard_before_anything_else():
    script = (
        "import resource; from platen.job_capture.analysis_worker import set_limits;"
        " set_limits(300 * 2**20, 7, 2**20);"
        " print([list(resource.getrlimit(r)) for r in (resource.RLIMIT_AS, resource.RLIMIT_CPU,"
        " resource.RLIMIT_FSIZE, resource.RLIMIT_CORE)])"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, check=True)
    assert json.loads(out.stdout) == [[300 * 2**20] * 2, [7, 7], [2**20] * 2, [0, 0]]


async def test_every_hostile_document_is_denied_with_a_reason_and_the_service_stays_small():
    analyser = IsolatedAnalyser(LIMITS)
    corpus = {name: make() for name, make in hostile.CASES.items()}
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    results = await asyncio.gather(
        *(analyser.analyse(document, name) for name, document in corpus.items()),
        return_exceptions=True,
    )
    reasons = dict(zip(corpus, results, strict=True))
    assert all(isinstance(r, UnreadableDocument) for r in reasons.values()), reasons
    reasons = {name: str(exc) for name, exc in reasons.items()}
    too_long = TOO_LONG.format(DEADLINE)
    assert reasons["infinite-loop PostScript"] == too_long
    # Its memory limit stops it (see below), unless the machine is too busy to get there.
    assert reasons["memory-hungry PostScript"] in (OUT_OF_MEMORY, too_long)
    assert reasons["deeply nested objects"] == "the PDF is damaged or truncated"
    assert reasons["page tree claiming 10^6 pages"].startswith("the PDF")
    # Gigabytes behind stacked filters: whichever limit comes first, it is refused. As a
    # page's content it is decoded to be searched for colour spaces (separations.py) and
    # meets the memory limit there, unless the machine is too busy to get there.
    too_big = TOO_MUCH_MEMORY.format(LIMITS.memory_bytes // 2**20)
    assert reasons["stacked-filter PDF"] in (too_big, too_long, isolation.TOO_MUCH_CPU)
    assert reasons["huge image"] in (too_long, isolation.TOO_MUCH_CPU)
    # Nothing of it was parsed in this process (kilobytes, in ru_maxrss's units).
    grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grew < 64 * 1024, f"the service grew by {grew} KiB"
    assert analyser.queued == 0 and analyser._owners == {}


async def test_ghostscript_is_stopped_by_the_memory_limit_long_before_the_deadline():
    analyser = IsolatedAnalyser(Limits(timeout=60, memory_bytes=384 * 2**20))
    with pytest.raises(UnreadableDocument) as seen:
        await analyser.analyse(hostile.MEMORY_HUNGRY_PS)
    assert str(seen.value) == OUT_OF_MEMORY


async def started_child(analyser: IsolatedAnalyser) -> int:
    """The pid of the one child running, once its parent has reported it."""
    # Polled: the parent's report is read by the analyser's own task, which has no event.
    while not analyser._server or not analyser._server._pids:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    (child,) = analyser._server._pids.values()
    return child


async def test_a_child_that_dies_is_a_crash_and_a_dead_parent_is_replaced():
    analyser = IsolatedAnalyser(Limits(timeout=60))
    endless = asyncio.create_task(analyser.analyse(hostile.INFINITE_LOOP_PS))
    child = await started_child(analyser)
    os.kill(child, signal.SIGSEGV)
    with pytest.raises(RuntimeError, match="exit status -11"):
        await endless

    endless = asyncio.create_task(analyser.analyse(hostile.INFINITE_LOOP_PS))
    child = await started_child(analyser)
    first = analyser._server
    first.process.kill()
    with pytest.raises(RuntimeError, match="parent ended"):
        await endless
    # Its orphaned child was killed with it (ended: a zombie until whoever adopted it reaps
    # it, which is not this test's to wait for), and the next document gets a new parent.
    for _ in range(500):
        if state(child) in ("Z", "gone"):
            break
        await asyncio.sleep(0.01)
    else:
        raise AssertionError(f"the orphaned child {child} lives on: {state(child)}")
    assert (await analyser.analyse(make_pdf(2))).pages == 2
    assert analyser._server is not first


async def test_a_hostile_owner_holds_one_worker_while_another_owner_is_served():
    # Two workers; mallory's three endless documents would take both without the
    # per-owner limit, and alice would wait for their deadline (long: a minute).
    analyser = IsolatedAnalyser(Limits(timeout=60, workers=2, workers_per_owner=1))
    attack = [
        asyncio.create_task(analyser.analyse(hostile.INFINITE_LOOP_PS, "mallory")) for _ in range(3)
    ]
    await asyncio.sleep(0)  # the attack is admitted first
    normal = asyncio.create_task(analyser.analyse(make_pdf(3), "alice"))
    done, _ = await asyncio.wait([normal, *attack], return_when=asyncio.FIRST_COMPLETED)
    assert done == {normal}
    assert isinstance(normal.result(), Analysis) and normal.result().pages == 3
    for task in attack:  # a cancelled analysis kills its worker (and removes its folder)
        task.cancel()
    await asyncio.gather(*attack, return_exceptions=True)
    assert analyser.queued == 0 and analyser._owners == {}


async def test_bytes_beyond_the_queue_limits_are_refused_at_once_as_busy():
    limits = Limits(timeout=DEADLINE, workers=1, queued_bytes=100, queued_bytes_per_owner=40)
    analyser = IsolatedAnalyser(limits)
    first = asyncio.create_task(analyser.analyse(hostile.INFINITE_LOOP_PS, "mallory"))
    await asyncio.sleep(0)
    loop = hostile.INFINITE_LOOP_PS + b" " * 30  # 44 bytes: over mallory's 40 with the first
    with pytest.raises(UnreadableDocument) as owner_full:
        await analyser.analyse(loop, "mallory")
    assert str(owner_full.value) == BUSY_OWNER
    queued = [
        asyncio.create_task(analyser.analyse(hostile.INFINITE_LOOP_PS + b" " * 20, user))
        for user in ("bob", "carol")
    ]
    await asyncio.sleep(0)
    with pytest.raises(UnreadableDocument) as full:  # 14 + 34 + 34 queued: 100 is reached
        await analyser.analyse(b"%!PS\n" + b" " * 20, "dave")
    assert str(full.value) == BUSY
    first.cancel()
    for task in queued:
        task.cancel()
    await asyncio.gather(first, *queued, return_exceptions=True)
    assert analyser.queued == 0 and analyser._owners == {}


async def test_an_analysis_still_running_after_a_while_gets_the_lowest_cpu_priority():
    analyser = IsolatedAnalyser(Limits(timeout=60, yield_after=0.2))
    endless = asyncio.create_task(analyser.analyse(hostile.INFINITE_LOOP_PS))
    child = await started_child(analyser)
    for _ in range(500):  # polled: nothing tells when the priority was lowered
        if os.getpriority(os.PRIO_PROCESS, child) == 19:
            break
        await asyncio.sleep(0.01)
    assert os.getpriority(os.PRIO_PROCESS, child) == 19
    endless.cancel()
    await asyncio.gather(endless, return_exceptions=True)
