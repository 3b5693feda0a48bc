"""The run's timeline summary: busy time per worker and the tail of the run."""

import pytest

from platen.testing.timeline import CpuTimes, Timeline


def test_busy_time_per_worker_and_the_tail_in_start_order() -> None:
    timeline = Timeline()
    timeline.add("a.py::short", "gw0", 100.0, 101.0)
    timeline.add("a.py::long", "gw1", 100.0, 200.0)
    timeline.add("b.py::late", "gw0", 195.0, 199.0)
    # setup, call and teardown come as three reports: one span from first start to last stop
    timeline.add("b.py::late", "gw0", 199.0, 199.5)

    lines = timeline.lines()

    assert lines[0] == "tests from the first start to the last stop: 100 s"
    assert "  gw0: 2 tests, 6 s in tests, done at 100 s" in lines
    assert "  gw1: 1 tests, 100 s in tests, done at 100 s" in lines
    tail = lines[lines.index("still running in the last 10% (from 90 s):") + 1 :]
    assert [line.split()[-1] for line in tail] == ["a.py::long", "b.py::late"]


def test_an_empty_run_prints_nothing() -> None:
    assert Timeline().lines() == []


def test_the_machines_processors_busy_share_counts_neither_idle_nor_io_wait():
    before = CpuTimes.parse("cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 1 2 3\n")
    after = CpuTimes.parse("cpu  400 0 150 1080 170 0 0 0 0 0\n")
    # 800 ticks passed: user 300 and system 100 busy, 280 idle, 120 idle waiting for I/O.
    line = after.since(before, cpus=2, ticks_per_second=100)
    assert line == (
        "the machine's 2 processors: busy 50% of the run (4 CPU-s), idle waiting for I/O 15%"
    )


def test_a_file_that_is_not_proc_stat_is_refused():
    with pytest.raises(ValueError):
        CpuTimes.parse("intr 1 2 3\n")
