"""Where a run's CPU goes, test by test (`PLATEN_CPU_BY_TEST=1`): a process tree's ticks,
read from /proc, and the summary printed after a run on two workers."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

from platen.testing.cpu_by_test import read_processes, summary, tree_ticks


def test_a_tree_counts_its_root_and_every_process_below_it_and_nothing_else() -> None:
    processes = {
        1: (0, 1000),  # init: not in the tree
        10: (1, 50),  # the worker
        11: (10, 7),  # its broker
        12: (11, 3),  # a child of the broker
        13: (10, 20),  # a service, with its ended children's ticks in its own
        20: (1, 400),  # another worker
        21: (20, 9),
    }
    assert tree_ticks(processes, 10) == 50 + 7 + 3 + 20
    assert tree_ticks(processes, 20) == 409
    assert tree_ticks(processes, 99) == 0  # gone


def test_a_process_is_read_with_its_waited_for_childrens_ticks(tmp_path) -> None:
    # /proc/PID/stat: a command name with a space and a parenthesis in it, then state,
    # ppid, ... utime (14th field), stime, cutime, cstime.
    for pid, line in {
        "10": "10 (pytest (gw0)) S 1 10 10 0 -1 0 0 0 0 0 40 10 5 2 20 0",
        "11": "11 (beam.smp) S 10 11 11 0 -1 0 0 0 0 0 6 1 0 0 20 0",
    }.items():
        (tmp_path / pid).mkdir()
        (tmp_path / pid / "stat").write_text(line + "\n")
    (tmp_path / "self").mkdir()  # not a process's folder
    (tmp_path / "12").mkdir()  # ended between the listing and the read: no stat
    assert read_processes(tmp_path) == {10: (1, 57), 11: (10, 7)}


def test_the_summary_puts_the_costliest_files_and_tests_first() -> None:
    lines = summary(
        [
            ("tests/e2e/test_a.py::test_one", 3.0, 10.0),
            ("tests/e2e/test_a.py::test_two", 1.0, 2.0),
            ("libs/x/tests/test_b.py::test_big", 5.0, 6.0),
        ]
    )
    assert lines[0] == "3 tests, 9 CPU-s in the workers' process trees"
    files = [line.split() for line in lines[2:4]]
    assert files == [
        ["5.0", "6.0", "1", "libs/x/tests/test_b.py"],
        ["4.0", "12.0", "2", "tests/e2e/test_a.py"],
    ]
    assert lines[5].split() == ["5.0", "6.0", "libs/x/tests/test_b.py::test_big"]
    assert summary([]) == []


def test_a_run_on_two_workers_charges_each_test_the_cpu_of_what_it_started(tmp_path) -> None:
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["platen.testing.cpu_by_test"]\n')
    # One test burns about half a second in a child process, another in a grandchild
    # whose parent ends first (an orphan: kept in the tree by the subreaper), the third
    # nothing.
    burn = "import time\\nend = time.process_time() + 0.5\\nwhile time.process_time() < end: pass"
    # The orphan says when it is done, so that its test waits for it however loaded the
    # machine is (and it burns nothing during the next test).
    burn_and_say = burn + "\\nimport pathlib, sys\\npathlib.Path(sys.argv[1]).touch()"
    (tmp_path / "test_cpu.py").write_text(
        textwrap.dedent(
            f"""
            import os, subprocess, sys, time

            def test_child():
                subprocess.run([sys.executable, "-c", "{burn}"], check=True)

            def test_orphan():
                # The middle process starts the burner and exits at once, without waiting.
                code = (
                    "import subprocess, sys; "
                    "subprocess.Popen([sys.executable, '-c', {burn_and_say!r}, 'orphan-done'])"
                )
                subprocess.run([sys.executable, "-c", code], check=True)
                deadline = time.monotonic() + 120
                while not os.path.exists("orphan-done") and time.monotonic() < deadline:
                    time.sleep(0.05)
                time.sleep(0.1)  # and has ended

            def test_idle():
                time.sleep(0.3)
            """
        )
    )
    args = [sys.executable, "-m", "pytest", "-q", "-n", "2", "-p", "no:cacheprovider"]
    args += ["-o", "addopts=", str(tmp_path)]
    env = {**os.environ, "PLATEN_CPU_BY_TEST": "1"}
    ended = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=180, env=env)
    assert ended.returncode == 0, ended.stdout + ended.stderr

    report = ended.stdout.split("where the CPU went, by test")[1]
    assert re.search(r"3 tests, \d+ CPU-s", report), report
    spent = {
        name: float(cpu)
        for cpu, name in re.findall(r"^ +(\d+\.\d) +\d+\.\d +test_cpu\.py::(\w+)$", report, re.M)
    }
    assert spent["test_child"] >= 0.4 and spent["test_orphan"] >= 0.4, report
    assert spent["test_idle"] < 0.2, report
