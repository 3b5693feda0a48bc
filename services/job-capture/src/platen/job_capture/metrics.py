"""job-capture's own metrics, added to the service's (platen.operations.metrics) through its
ServiceSpec: how analysis goes (running, waiting, bytes admitted, seconds each), the jobs
not yet final by state (those waiting for their user among them), and the desktops
connected as the broker sees them.

The counts that live in the database or at the broker are read when Prometheus scrapes,
not kept up to date by every handler, so the service pays for them only then. With
replicas, each reports the same table: read them with `max`, not `sum`. No label holds a
user or a login.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Gauge, Histogram

from platen.job_capture import isolation, presence
from platen.job_capture.analysis import UnreadableDocument
from platen.job_capture.domain import ALLOWED
from platen.job_capture.store import Store

# Most documents take tens of milliseconds; a hostile one runs until its deadline.
ANALYSIS_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)

# Collectors made once, unregistered: `register` adds them to the service's registry.
ANALYSIS_SECONDS = Histogram(
    "platen_analysis_seconds",
    "Seconds from a document's admission to its analysis's answer (waiting for a worker "
    "included), by outcome: analysed, refused (over a limit, unreadable: the job is "
    "denied with the reason) or crashed.",
    ["outcome"],
    buckets=ANALYSIS_BUCKETS,
    registry=None,
)
ANALYSES = Gauge(
    "platen_analyses",
    "Analyses in this process now: running in a worker, or waiting for one.",
    ["state"],
    registry=None,
)
QUEUED_BYTES = Gauge(
    "platen_analysis_queued_bytes",
    "Bytes of documents admitted to analysis and not yet analysed (capped in total and per user).",
    registry=None,
)
JOBS = Gauge(
    "platen_jobs",
    "Jobs not yet in a final state, by state: captured and priced wait for pricing or for "
    "their user; released and unconfirmed for the printer's outcome.",
    ["state"],
    registry=None,
)
DESKTOPS = Gauge(
    "platen_desktops_connected",
    "Desktop connections to this Platen's vhost, as the broker's management API lists them "
    "(absent when job-capture has no monitoring key).",
    registry=None,
)

_in_progress = 0


@contextmanager
def analysing() -> Iterator[None]:
    """Count and time one document's analysis, from its admission to its answer."""
    global _in_progress
    _in_progress += 1
    started = time.monotonic()
    outcome = "crashed"
    try:
        yield
        outcome = "analysed"
    except UnreadableDocument:
        outcome = "refused"
        raise
    finally:
        _in_progress -= 1
        ANALYSIS_SECONDS.labels(outcome).observe(time.monotonic() - started)


def analyses_now() -> tuple[int, int, int]:
    """(running, waiting for a worker, bytes admitted) in this process."""
    running, queued_bytes = isolation.load()
    return running, max(0, _in_progress - running), queued_bytes


def register(rt) -> None:
    """ServiceSpec.metrics hook: add job-capture's collectors and their scrape-time reads."""
    for collector in (ANALYSIS_SECONDS, ANALYSES, QUEUED_BYTES, JOBS):
        rt.metrics.registry.register(collector)
    for outcome in ("analysed", "refused", "crashed"):
        ANALYSIS_SECONDS.labels(outcome)  # each outcome shown from the start, at 0
    desktops_known = presence.monitored()
    if desktops_known:
        rt.metrics.registry.register(DESKTOPS)

    async def sample() -> None:
        running, waiting, queued = analyses_now()
        ANALYSES.labels("running").set(running)
        ANALYSES.labels("waiting").set(waiting)
        QUEUED_BYTES.set(queued)
        async with rt.pool.acquire() as conn:
            counts = await Store(conn).open_jobs_by_state()
        for state in _OPEN_STATES:
            JOBS.labels(state).set(counts.get(state, 0))
        if desktops_known:
            found = await presence.desktops()
            if found is not None:
                DESKTOPS.set(len(found))

    rt.metrics.on_scrape(sample)


# Every state a job can leave is one it is in before it is final.
_OPEN_STATES = tuple(ALLOWED)
