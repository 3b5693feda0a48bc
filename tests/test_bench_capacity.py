"""The pure helpers of the capacity benches (bench/capacity.py)."""

from __future__ import annotations

import os

import pytest

from bench.capacity import percentile, stat_fields, status_kib


def test_percentile_is_a_value_that_occurred_by_nearest_rank():
    values = [float(v) for v in range(200, 0, -1)]  # 200 samples, unsorted
    assert percentile(values, 50) == 100.0
    assert percentile(values, 99) == 198.0  # the second slowest of 200
    assert percentile(values, 100) == 200.0
    assert percentile([7.0], 99) == 7.0
    with pytest.raises(ValueError):
        percentile([], 50)


def test_status_field_in_kib():
    status = "Name:\tpython\nVmRSS:\t  41564 kB\nRssAnon:\t 23908 kB\n"
    assert status_kib(status, "VmRSS") == 41564
    assert status_kib(status, "RssAnon") == 23908
    with pytest.raises(KeyError):
        status_kib(status, "VmSwap")


def test_stat_fields_survive_a_command_name_with_spaces_and_parentheses():
    # pid (comm) state ppid ... utime(14) stime(15) ...
    fields = ["S", "4242"] + ["0"] * 9 + ["300", "100"] + ["0"] * 30
    ppid, cpu = stat_fields("17 (gs (worker) 1) " + " ".join(fields))
    assert ppid == 4242
    assert cpu == pytest.approx(400 / os.sysconf("SC_CLK_TCK"))
