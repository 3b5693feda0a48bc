"""job-capture's own metrics (platen.job_capture.metrics): each analysis counted and timed by
its outcome, and the open jobs by state read from the store, with no server."""

from __future__ import annotations

import asyncio
import base64
import uuid
from dataclasses import dataclass, field

import platen.events.jobs as ev
from platen.job_capture import handlers, metrics
from platen.job_capture.analysis import Analysis, UnreadableDocument
from platen.job_capture.domain import Job
from platen.operations.metrics import Metrics

from .fakes import FakeStore


def submission() -> ev.SubmitJob:
    return ev.SubmitJob(
        job_id=uuid.uuid4(),
        user="alice",
        printer="lab",
        document_name="a.pdf",
        document=base64.b64encode(b"%PDF-1.7"),
        source="cups",
    )


def observed(outcome: str) -> int:
    """How many analyses with `outcome` the histogram holds."""
    child = metrics.ANALYSIS_SECONDS.labels(outcome)
    return int(sum(bucket.get() for bucket in child._buckets))


async def test_each_analysis_is_timed_by_its_outcome_and_counted_while_it_runs(monkeypatch):
    release = asyncio.Event()
    both_started = asyncio.Event()
    seen_in_progress = []

    async def analyse(document: bytes, owner: str = "") -> Analysis:
        seen_in_progress.append(metrics._in_progress)
        if len(seen_in_progress) == 2:
            both_started.set()
        await release.wait()
        if document == b"%PDF-1.7":
            return Analysis(format="pdf", pages=1, color_pages=(), page_sizes=("A4",))
        raise UnreadableDocument("too big")

    monkeypatch.setattr(handlers, "analyse", analyse)
    before = {o: observed(o) for o in ("analysed", "refused", "crashed")}
    good = asyncio.create_task(handlers.analyse_submission(submission()))
    bad = submission().model_copy(update={"document": b"other"})
    refused = asyncio.create_task(handlers.analyse_submission(bad))
    await asyncio.wait_for(both_started.wait(), 30)
    # Both admitted and neither answered: no worker started, so both count as waiting.
    assert metrics.analyses_now() == (0, 2, 0)
    release.set()
    assert isinstance(await good, Analysis)
    assert await refused == "too big"
    assert metrics.analyses_now()[:2] == (0, 0)
    assert observed("analysed") == before["analysed"] + 1
    assert observed("refused") == before["refused"] + 1
    assert observed("crashed") == before["crashed"]


async def test_a_crashed_analysis_counts_as_crashed(monkeypatch):
    async def crash(document: bytes, owner: str = "") -> Analysis:
        raise RuntimeError("worker died")

    monkeypatch.setattr(handlers, "analyse", crash)
    before = observed("crashed")
    assert await handlers.analyse_submission(submission()) == handlers.NOT_ANALYSED
    assert observed("crashed") == before + 1


@dataclass
class Runtime:
    """What `register` uses of the service's runtime."""

    pool: object
    metrics: Metrics = field(default_factory=Metrics)


class FakePool:
    def __init__(self, store: FakeStore) -> None:
        self.store = store

    def acquire(self):
        return self

    async def __aenter__(self):
        return self.store

    async def __aexit__(self, *exc):
        return False


async def test_open_jobs_are_shown_by_state_and_final_ones_not(monkeypatch):
    store = FakeStore()
    for state in ("captured", "captured", "priced", "released", "printed", "denied"):
        store.put(Job(uuid.uuid4(), "alice", "lab", "a.pdf", state))
    # The sampler makes a Store over the connection; here the connection is the fake.
    monkeypatch.setattr(metrics, "Store", lambda conn: conn)
    rt = Runtime(FakePool(store))
    metrics.register(rt)
    await rt.metrics.sample()
    value = rt.metrics.registry.get_sample_value
    assert value("platen_jobs", {"state": "captured"}) == 2
    assert value("platen_jobs", {"state": "priced"}) == 1
    assert value("platen_jobs", {"state": "released"}) == 1
    assert value("platen_jobs", {"state": "unconfirmed"}) == 0
    assert value("platen_jobs", {"state": "printed"}) is None
    assert value("platen_analyses", {"state": "running"}) == 0
    # No monitoring key: the desktops connected are not known, and not made up.
    assert value("platen_desktops_connected") is None
    assert value("platen_analysis_seconds_count", {"outcome": "refused"}) is not None
