"""The known-long tests start first, one worker each, so that none of them ends a run late.

pytest-xdist's `worksteal` hands each worker a contiguous slice of the collection at the
start, and an idle worker later steals from the *end* of the busiest worker's slice. So a
test at the front of a slice runs at once on that worker, and one near the end of the
collection (where `tests/e2e` sorts) may start minutes in, after the quick tests are done,
and run on alone while the other workers wait. With four workers, a 270 s test started last
adds most of 270 s to the run.

This plugin (enabled by the root conftest.py) reorders the collection on each worker, the
same way on every one (xdist requires identical collections): the long groups below are
shared out, longest first, to the slice with the least long work so far (the LPT rule),
and placed at the front of their slices; every other test keeps its order in the
remaining places. Without xdist the order is left alone: one process runs everything
anyway.

A group is every test whose node id starts with its prefix, kept together and in order: a
module with an expensive module-scoped fixture (`test_long_outages.py`'s private stack) is
one group, so a second worker does not start that fixture again.

The seconds are what CI measured (setup + call, `--durations`, four workers on two cores);
they only rank the groups, and a wrong figure costs time, never a result. Add a test here
when `--durations` shows it among the slowest.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

# node id prefix -> seconds (setup + call) in CI
LONG: dict[str, float] = {
    "tests/e2e/test_chaos.py": 275,
    "tests/e2e/test_long_outages.py": 240,
    "tests/containers/": 210,
    "tests/cups/test_cups_as_sent.py": 150,
    "tests/cups/test_cups_capture.py": 140,
    "tests/e2e/test_make_run.py": 115,
    "tests/cups/test_print_servers.py": 110,
    "tests/e2e/test_pricing.py": 80,
    "tests/cups/test_cups_outages.py": 75,
    "tests/cups/test_cups_identity.py": 65,
    "tests/cups/test_cups_authenticated.py": 48,
    "tests/cups/test_cups_raster.py": 45,
    "tests/e2e/test_foundation.py::test_killing_services_mid_flight": 38,
    "tests/e2e/test_replicas.py": 36,
    "services/job-capture/tests/unit/test_colour_analysis.py::test_every_truncation": 30,
    "tests/e2e/test_broker_restart.py": 30,
    "apps/cups-backend/tests/test_termination.py::test_the_backend_cancelled_while": 25,
    "tests/e2e/test_client_json.py::test_an_answer_after_the_deadline": 25,
}


def slice_sizes(total: int, workers: int) -> list[int]:
    """The sizes of the slices xdist's worksteal hands out at the start (its
    `check_schedule`: each idle worker in turn gets len(pending) // workers_left)."""
    sizes = []
    left = total
    for i in range(workers):
        n = left // (workers - i)
        sizes.append(n)
        left -= n
    return sizes


def order(nodeids: Sequence[str], workers: int, long: dict[str, float] = LONG) -> list[int]:
    """A new order of the tests (indices into `nodeids`): the long groups at the fronts
    of the workers' slices, shared out by the LPT rule; the rest in their own order."""
    groups: dict[str, list[int]] = {}
    for i, nodeid in enumerate(nodeids):
        # The longest matching prefix names the test's group (a test may be named on its
        # own inside a module that is not).
        prefix = max((p for p in long if nodeid.startswith(p)), key=len, default=None)
        if prefix is not None:
            groups.setdefault(prefix, []).append(i)
    if workers < 2 or not groups:
        return list(range(len(nodeids)))
    sizes = slice_sizes(len(nodeids), workers)
    fronts: list[list[int]] = [[] for _ in range(workers)]
    load = [0.0] * workers
    for prefix in sorted(groups, key=lambda p: (-long[p], p)):
        members = groups[prefix]
        room = [w for w in range(workers) if len(fronts[w]) + len(members) <= sizes[w]]
        if not room:
            return list(range(len(nodeids)))  # a collection too small to matter
        w = min(room, key=lambda w: (load[w], w))
        fronts[w].extend(members)
        load[w] += long[prefix]
    placed = {i for front in fronts for i in front}
    rest = iter(i for i in range(len(nodeids)) if i not in placed)
    out: list[int] = []
    for w in range(workers):
        out.extend(fronts[w])
        out.extend(next(rest) for _ in range(sizes[w] - len(fronts[w])))
    return out


DIST_KEY = "platen_dist"


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    """On the controller: tell each worker the scheduler (a worker's own `--dist` reads
    "no")."""
    node.workerinput[DIST_KEY] = node.config.getoption("dist")


@pytest.hookimpl(trylast=True)  # after deselection (-m, -k): the slices are of what runs
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    workerinput = getattr(config, "workerinput", None)
    if workerinput is None or workerinput.get(DIST_KEY) != "worksteal":
        return  # one process, or another scheduler, which cuts its own slices
    new = order([item.nodeid for item in items], int(workerinput["workercount"]))
    items[:] = [items[i] for i in new]
