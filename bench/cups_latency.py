"""The extra time a job spends in Platen before the printer receives it, and where it goes.

A real cupsd with one virtual printer (ippeveprinter) behind two queues: `direct` (its own
device URI) and `platen` (the same URI behind `platen:/`). The four services run as
processes; the user is on automatic charging (no popup). Jobs are sent one at a time with
`lp` and timed until the document lands in the printer's folder (the next job waits until
CUPS has finished the previous one, so every job finds an idle queue), the queues taking
turns. The difference of the medians is what Platen adds: the backend's start, capture,
analysis, pricing, authorisation, the decision reaching the backend, and reporting.

`--compare REV` also runs, in the same turns, the backend (with its events and rpc
libraries) of git revision REV against the same services: before and after in one run.
`--python-shim` also runs this worktree's backend behind the Python shim (`shim.py`)
instead of the compiled one (`shim.c`), in the same turns.
If REV has the print agent, REV's agent runs too, beside this worktree's, and REV's
backend talks to it: what the agent does for a job is compared as well.
Each backend runs as it was installed in its day: this worktree's as LocalCups installs it
(the shim under `python -I -S`, which hands the job to a warm backend of the agent's,
docs/cups.md), an older one under `python -S` if it could run so, else a plain `python`.

The breakdown, for each backend, reads its own timings (cupsd's log at LogLevel debug): from `lp`
to the backend's process start (cupsd and its filters, as for `direct`), Python's start,
the imports, preparing the document, the print agent ready (its connection shared, the
job's decision key bound; a backend without the agent connects itself), the submission (which
includes job-capture's analysis, shown alone from its database), the wait for the
decision, and from the decision to the printer having the document.

    .venv/bin/python bench/cups_latency.py [--jobs 15] [--compare 1e82b43]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg

from platen.localstack import lifeline
from platen.localstack.cups import LocalCups, VirtualPrinter
from platen.localstack.services import ServiceProcesses
from platen.testing.documents import make_pdf
from platen.testing.identities import Identities
from platen.testing.infra import provide
from platen.testing.isolation import Vhosts, create_database

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

from bench.revisions import unpack

ROOT = Path(__file__).resolve().parent.parent
# What an older backend is made of (put first on its PYTHONPATH).
BACKEND_SOURCES = ("apps/cups-backend/src", "libs/events/src", "libs/rpc/src")
TIMINGS = re.compile(r"\[Job (\d+)\] Platen: timings start=([\d.]+) (.*)$")


PYTHON_SHIM = "platen, Python shim"


def boot_clock() -> float:
    # The clock the backend says its process started on (seconds since boot).
    return time.clock_gettime(time.CLOCK_BOOTTIME)


def ctl(url: str, *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "platen.ctl", *args],
        check=True,
        env={"PLATEN_AMQP_URL": url, "PATH": ""},
        capture_output=True,
    )


def extract(rev: str, into: Path) -> Path:
    """The backend's sources at git revision `rev`, as a PYTHONPATH."""
    return unpack(rev, list(BACKEND_SOURCES), into)


def start_old_agent(pythonpath: Path, cups: LocalCups, folder: Path) -> subprocess.Popen | None:
    """The print agent of the sources at `pythonpath` (None if they have none), beside this
    worktree's, so that an older backend talks to the agent of its own day: what the agent
    does for a job (the status question, the submission, the wait) is compared too."""
    if not (pythonpath / BACKEND_SOURCES[0] / "platen/cups_backend/agent.py").exists():
        return None
    socket = folder / "old-agent" / "agent.sock"
    paths = ":".join(str(pythonpath / s) for s in BACKEND_SOURCES)
    env = {
        **os.environ,
        "PYTHONPATH": paths,
        "PLATEN_BACKEND_CONFIG": str(cups.backend_config),
        "PLATEN_AGENT_SOCKET": str(socket),
    }
    with open(folder / "old-agent.log", "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "platen.cups_backend.agent"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        lifeline.watch(proc.pid)  # killed with the benchmark, however it ends
    deadline = time.monotonic() + 30
    while not socket.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the agent of the older sources did not start ({folder})")
        time.sleep(0.05)
    return proc


def use_backend(cups: LocalCups, pythonpath: Path | None, agent: Path | None = None) -> None:
    """Make cupsd's `platen` backend this worktree's (None) or the sources at `pythonpath`
    (talking to the agent at `agent`, if given)."""
    script = cups.folder / "serverbin/backend/platen"
    current = cups.folder / "serverbin/platen.current"
    if not current.exists():  # the wrapper LocalCups wrote: this worktree's backend
        current.write_text(script.read_text())
    if pythonpath is None:
        script.write_text(current.read_text())
        return
    # An older backend runs as it was installed then: its module (`backend` since the
    # print agent, `main` before: that backend knows nothing of the agent, each of its jobs
    # talks to the broker itself), its sources first on PYTHONPATH, and `python -S` if it
    # adds site-packages itself when it needs them (as LocalCups ran it then), else a
    # plain `python` (site-packages scanned).
    backend = pythonpath / BACKEND_SOURCES[0] / "platen/cups_backend/backend.py"
    module = "backend" if backend.exists() else "main"
    no_site = backend.exists() and "with_site_packages" in backend.read_text()
    python = f"{sys.executable} -S" if no_site else sys.executable
    lines = [
        line
        for line in current.read_text().splitlines()
        if not line.startswith(("export PYTHONPATH=", "exec "))
        and not (agent is not None and line.startswith("export PLATEN_AGENT_SOCKET="))
    ]
    if agent is not None:
        lines.insert(1, f"export PLATEN_AGENT_SOCKET={agent}")
    lines.append(f'exec {python} -m platen.cups_backend.{module} "$@"')
    paths = ":".join(str(pythonpath / s) for s in BACKEND_SOURCES)
    lines.insert(1, f"export PYTHONPATH={paths}")
    script.write_text("\n".join(lines) + "\n")


def timed_print(
    cups: LocalCups, printer: VirtualPrinter, queue: str, doc: Path
) -> tuple[int, float, float]:
    """The CUPS job, when `lp` ran (boot clock), and the seconds from `lp` until the
    document is in the printer's folder. Then (untimed) waits for CUPS to finish the job,
    so that every job starts on an idle queue: CUPS's ipp backend keeps a job open for a
    while after sending it, to watch the printer."""
    before = len(printer.received())
    sent = boot_clock()
    start = time.perf_counter()
    job = cups.lp(queue, doc, "bench")
    while len(printer.received()) == before:
        if time.perf_counter() - start > 120:
            raise RuntimeError(f"a job on {queue} never arrived")
        time.sleep(0.005)
    took = time.perf_counter() - start
    while cups.job(queue, job).get("job-state") not in ("completed", "canceled", "aborted"):
        if time.perf_counter() - start > 120:
            raise RuntimeError(f"a job on {queue} never completed")
        time.sleep(0.2)
    return job, sent, took


def backend_timings(cups: LocalCups) -> dict[int, tuple[float, dict[str, float]]]:
    """Per CUPS job: the backend's process start (boot clock) and its steps (ms since)."""
    found = {}
    for line in (cups.folder / "log/error_log").read_text(errors="replace").splitlines():
        if m := TIMINGS.search(line):
            steps = dict(part.split("=") for part in m.group(3).split())
            found[int(m.group(1))] = (float(m.group(2)), {k: float(v) for k, v in steps.items()})
    return found


def ms(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"median {statistics.median(values) * 1000:5.0f} ms, p95 {p95 * 1000:5.0f} ms"


def breakdown(
    jobs: list[tuple[int, float, float]], timings: dict[int, tuple[float, dict[str, float]]]
) -> list[tuple[str, list[float]]]:
    """Each stage's seconds, per job of the current backend."""
    steps = (
        "started",
        "imported",
        "prepared",
        "connected",
        "asked",
        "submitted",
        "woken",
        "decided",
    )
    labels = {
        # The shim's start and the hand-over, for a backend that has them.
        "started": "Python start (to the job in the backend)",
        "imported": "imports",
        "prepared": "document read and prepared, job id kept",
        "connected": "agent: connection ready, decision key bound",
        "asked": "status question (the first answer)",
        "submitted": "submission (analysis included)",
        "woken": "wait for the push (pricing, ledger, decision)",
        # 0 when the push carries the decision (since session 15): no question after it.
        "decided": "status question after the push",
    }
    stages: dict[str, list[float]] = {"lp -> backend process started": []}
    stages.update({labels[s]: [] for s in steps})
    stages["decision -> printer has the document"] = []
    for job, sent, took in jobs:
        if job not in timings:
            continue
        start, marks = timings[job]
        stages["lp -> backend process started"].append(start - sent)
        before = 0.0
        for step in steps:
            if step in marks:
                stages[labels[step]].append((marks[step] - before) / 1000)
                before = marks[step]
        stages["decision -> printer has the document"].append(took - (start - sent) - before / 1000)
    return [(name, values) for name, values in stages.items() if values]


async def analysis_ms(db: str) -> list[float]:
    conn = await asyncpg.connect(db)
    try:
        rows = await conn.fetch("SELECT analysis_ms FROM job_capture.jobs WHERE analysis_ms > 0")
    finally:
        await conn.close()
    return [r["analysis_ms"] / 1000 for r in rows]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--jobs", type=int, default=15)
    p.add_argument("--compare", metavar="REV", help="also time the backend of git revision REV")
    p.add_argument(
        "--python-shim",
        action="store_true",
        help="also time this worktree's backend behind the Python shim (shim.py)",
    )
    args = p.parse_args()
    load_before = os.getloadavg()
    with provide(durable=True) as infra:
        vhost, url = Vhosts(infra).create()
        _, db = asyncio.run(create_database(infra.database_url))
        folder = Path(tempfile.mkdtemp(prefix="platen-bench-"))
        folder.chmod(0o755)
        old = extract(args.compare, folder / "old") if args.compare else None
        services = ServiceProcesses(
            url, db, folder / "logs", extra_env={"PLATEN_LOG_LEVEL": "WARNING"}
        )
        services.install_topology()
        services.start_all()
        config = folder / "backend.conf"
        # The backend signs in as a print server of its own, as in production.
        print_server = Identities(infra).print_server_url(vhost, "bench")
        config.write_text(
            f"[platen]\namqp_url = {print_server}\nserver_id = bench\n"
            f"state_dir = {folder / 'state'}\n"
        )
        # At LogLevel debug cupsd logs the backend's timings (DEBUG lines).
        cups = LocalCups(folder / "cups", config, log_level="debug")
        printer = VirtualPrinter("bench", folder / "printer")
        old_agent = None
        try:
            ctl(url, "status", "--timeout", "60")
            ctl(url, "printer", "add", "platen", "--price-per-page", "0.01")
            # Timed as capture and charging: no desktop to prove the user, so `trusted`.
            ctl(url, "printer", "identity", "platen", "trusted")
            ctl(url, "user", "add", "bench", "--balance", "100000")
            cups.start()
            old_agent = start_old_agent(old, cups, folder) if old is not None else None
            old_socket = folder / "old-agent" / "agent.sock" if old_agent is not None else None
            printer.start()
            cups.add_queue("platen", printer.uri)
            cups.run("lpadmin", "-p", "direct", "-E", "-v", printer.uri, "-m", "everywhere")
            doc = folder / "doc.pdf"
            doc.write_bytes(make_pdf(3))
            rounds: dict[str, list[tuple[int, float, float]]] = {"direct": [], "platen": []}
            if args.python_shim:
                rounds[PYTHON_SHIM] = []
            if old is not None:
                rounds[f"platen at {args.compare}"] = []
            for i in range(args.jobs + 1):  # the first round warms every path up
                for name, taken in rounds.items():
                    queue = "direct" if name == "direct" else "platen"
                    if queue == "platen":
                        if name == "platen":
                            use_backend(cups, None)
                            cups.use_shim("compiled")
                        elif name == PYTHON_SHIM:
                            cups.use_shim("python")
                        else:
                            use_backend(cups, old, old_socket)
                    result = timed_print(cups, printer, queue, doc)
                    if i > 0:
                        taken.append(result)
            use_backend(cups, None)
            print(
                f"infrastructure: {infra.source}; {args.jobs} jobs of 3 pages per queue, "
                "one at a time, the queues taking turns; load average (1 min) "
                f"{load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after"
            )
            direct = [took for _, _, took in rounds["direct"]]
            for name, taken in rounds.items():
                took = [t for _, _, t in taken]
                print(f"lp -> printer, {name + ':':<28} {ms(took)} (max {max(took) * 1000:.0f})")
            d = statistics.median(direct)
            for name, taken in rounds.items():
                if name != "direct":
                    extra = statistics.median([t for _, _, t in taken]) - d
                    print(f"added by Platen ({name}): median {extra * 1000:.0f} ms")
            timings = backend_timings(cups)
            for name, taken in rounds.items():
                if name == "direct":
                    continue
                backend = {"platen": "current backend", PYTHON_SHIM: "behind shim.py"}.get(
                    name, f"backend at {args.compare}"
                )
                print(f"where the time of a job through Platen goes ({backend}):")
                for stage, values in breakdown(taken, timings):
                    print(f"  {stage:<50} {ms(values)}")
            analysed = asyncio.run(analysis_ms(db))
            if analysed:
                print(f"  {'(of the submission) job-capture analysis':<50} {ms(analysed)}")
        finally:
            if old_agent is not None:
                old_agent.terminate()
                old_agent.wait(10)
            cups.stop()
            printer.stop()
            services.stop_all()


if __name__ == "__main__":
    main()
