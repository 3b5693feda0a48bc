"""The known-long tests are sorted to the front, the rest keep their order."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from platen.testing.order import LONG_FIRST, LONG_NEXT, arrange, rank

ROOT = Path(__file__).resolve().parents[3]


def test_a_test_ranks_by_the_first_prefix_it_starts_with_and_others_after_all():
    prefixes = ("a/test_x.py::test_long", "b/test_y.py")
    assert rank("a/test_x.py::test_long[1]", prefixes) == 0
    assert rank("b/test_y.py::test_any", prefixes) == 1
    assert rank("a/test_x.py::test_short", prefixes) == 2


def test_every_long_test_named_is_still_there():
    # A renamed test would quietly drop back to its old place: the list says so instead.
    for prefix in (*LONG_FIRST, *(p for queue in LONG_NEXT for p in queue)):
        path, _, name = prefix.partition("::")
        source = (ROOT / path).read_text()
        assert not name or f"def {name}(" in source, prefix


def test_each_queue_starts_the_share_worksteal_hands_its_worker_first():
    ids = [f"t{i}" for i in range(10)] + ["y/c", "x/b2", "x/b1", "long/a"]
    queues = (("long/a",), ("x/b1", "x/b2"), ("y/c",))

    def arranged(workers: int) -> list[str]:
        order = arrange(ids, workers, queues)
        assert sorted(order) == list(range(len(ids)))  # every test, once
        return [ids[i] for i in order]

    # Three workers, 14 tests: shares of 4, 5 and 5 (14 // 3, then 10 // 2, then 5).
    assert arranged(3) == [
        *("long/a", "t0", "t1", "t2"),
        *("x/b1", "x/b2", "t3", "t4", "t5"),
        *("y/c", "t6", "t7", "t8", "t9"),
    ]
    # Fewer workers than queues: the last worker takes the queues left, in their order;
    # one process runs them all first, as LONG_FIRST alone did.
    assert arranged(2)[7:10] == ["x/b1", "x/b2", "y/c"]
    assert arranged(1)[:4] == ["long/a", "x/b1", "x/b2", "y/c"]
    assert arranged(1)[4:] == [f"t{i}" for i in range(10)]


def test_a_run_starts_with_the_long_tests_and_keeps_the_rest_in_order(tmp_path):
    (tmp_path / "conftest.py").write_text(
        textwrap.dedent(
            """
            import platen.testing.order as order
            order.LONG_FIRST = ("test_b.py::test_long", "test_a.py::test_slow")
            pytest_plugins = ["platen.testing.order"]
            """
        )
    )
    (tmp_path / "test_a.py").write_text("def test_one(): pass\ndef test_slow(): pass\n")
    (tmp_path / "test_b.py").write_text("def test_two(): pass\ndef test_long(): pass\n")
    args = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"]
    args += ["-o", "addopts=", str(tmp_path)]
    out = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    ids = [line for line in out.stdout.splitlines() if "::" in line]
    assert ids == [
        "test_b.py::test_long",
        "test_a.py::test_slow",
        "test_a.py::test_one",
        "test_b.py::test_two",
    ]
