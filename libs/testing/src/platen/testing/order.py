"""The known-long tests go first, in a few queues, each at the start of a worker's share.

pytest-xdist's `worksteal` hands each worker a contiguous share of the collection and,
when a worker runs dry, moves the *end* of the longest queue to it. A test cannot be split,
so a long test that a worker reaches late becomes a tail with every other worker idle
(`platen.testing.timeline` shows them: `make test-unit` ended on a 14 s Ghostscript test
that started at 51 s of 64). Sorted to the front of the collection, the long tests are the
first of the first worker's share, which nobody steals: they run one after the other from
the start, while the other workers take the rest and then steal the first worker's end.

One after the other on purpose: a scheduler that started every long test at once, one per
worker, was tried (session 12) and made them slower, each beside the others, on two cores
(docs/development.md, "Which tests run when").

The list is by measurement (`--durations`, the run's "where the time went"); a test
missing from it is only as late as before, never wrong.

With six workers (session 26) the longest tests one after another came to about 550 s, as
long as the whole run: `make run`'s test started at 457 s and ended the run. So the next
longest have queues of their own (`LONG_NEXT`), each at the start of another worker's
share: the second worker runs the chaos run and then `make run`'s test, the third the long
outages, while the first still begins with the container stack.
"""

from __future__ import annotations

import os

import pytest

# Node id prefixes, in the order they run. Together they must stay well under the run's
# wall time (about 9 min here): they are one worker's queue. The container stack's build
# and tour (3 to 4 min) has always been first (it was tests/containers/conftest.py's); the
# unit tier's are its longest, measured under `make test-unit` on 2 December 2026 at
# load 3.5.
LONG_FIRST = (
    "tests/containers/test_compose_stack.py",
    # 14 s: some fifty attacks through one resident interpreter
    "services/job-capture/tests/unit/test_separations.py::"
    "test_the_resident_interpreter_is_protected_the_same_way",
    # 5.5 s: a pytest of its own on two xdist workers
    "libs/testing/tests/test_fixture_time.py::"
    "test_a_run_on_two_workers_reports_every_set_up_and_the_teardowns_time",
    # 4.6 s and 3.9 s: hostile documents that run into their limits
    "services/job-capture/tests/unit/test_isolated_analysis.py::"
    "test_every_hostile_document_is_denied_with_a_reason_and_the_service_stays_small",
    "services/job-capture/tests/unit/test_resident_ghostscript.py::"
    "test_hostile_documents_meet_their_limits_and_the_next_document_is_served",
    # 3.3 s: PostScript that errs, loops or floods, through the backend
    "apps/cups-backend/tests/test_backend_as_sent.py::"
    "test_a_postscript_error_a_runaway_loop_or_too_much_output_is_refused",
)

# The queues of the second worker, the third, ...: each at the start of that worker's share
# of the collection (as worksteal hands the shares out), so that they run beside the first
# worker's instead of after it. With fewer workers, the last worker takes the queues left.
LONG_NEXT: tuple[tuple[str, ...], ...] = (
    (
        # 100 to 330 s alone: 500 jobs through replicas and a broker cluster under faults.
        # At 2030 of 2114 in the collection it was stolen late and started late.
        "tests/e2e/test_chaos.py",
        # 41 to 90 s: `make run` and the README's tour. At 2130 of 2176 in the collection
        # it was stolen late in both of session 23's whole runs (started at 767 s of 870
        # and at 709 s of 753; in the second, its last 37 s ran with every other worker
        # done).
        "tests/e2e/test_make_run.py",
    ),
    # 140 to 180 s: a broker stopped, frozen, and a database stopped, on a stack of its own.
    ("tests/e2e/test_long_outages.py",),
)


def rank(nodeid: str, long_first: tuple[str, ...] | None = None) -> int:
    """The test's place in `long_first` (the first prefix it starts with, LONG_FIRST by
    default), or after all of them."""
    prefixes = LONG_FIRST if long_first is None else long_first
    for place, prefix in enumerate(prefixes):
        if nodeid.startswith(prefix):
            return place
    return len(prefixes)


def arrange(
    nodeids: list[str],
    workers: int,
    queues: tuple[tuple[str, ...], ...] | None = None,
) -> list[int]:
    """The new order of `nodeids`, as indexes: queue k (LONG_FIRST, then LONG_NEXT's)
    first in worker k's share, in the queue's order; the rest keep theirs. Each share is
    as long as worksteal's first hand-out makes it: of the n tests left for the w workers
    left, n // w."""
    queues = (LONG_FIRST, *LONG_NEXT) if queues is None else queues
    workers = max(1, workers)
    queued: list[list[tuple[int, int]]] = [[] for _ in queues]
    rest: list[int] = []
    for index, nodeid in enumerate(nodeids):
        for k, queue in enumerate(queues):
            place = rank(nodeid, queue)
            if place < len(queue):
                queued[k].append((place, index))
                break
        else:
            rest.append(index)
    for queue_items in queued:
        queue_items.sort()
    order: list[int] = []
    left = len(nodeids)
    others = iter(rest)
    for w in range(workers):
        size = left // (workers - w)
        left -= size
        mine = queued[w] if w < len(queued) else []
        if w == workers - 1:  # fewer workers than queues: the last takes those left
            mine = [item for queue_items in queued[w:] for item in queue_items]
        share = [index for _, index in mine]
        # range first: zip stops on it before it takes one more test from the rest.
        share += [index for _, index in zip(range(size - len(share)), others, strict=False)]
        order += share
    order += list(others)
    return order


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # trylast: after the tiers' deselection (`-m unit`) and every other reordering. Every
    # worker computes the same order (xdist checks), from the same collection and count.
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    order = arrange([item.nodeid for item in items], workers)
    items[:] = [items[index] for index in order]
