"""The extra time a job spends in Platen before the printer receives it.

A real cupsd with one virtual printer (ippeveprinter) behind two queues: `direct` (its own
device URI) and `platen` (the same URI behind `platen:/`). The four services run as
processes; the user is on automatic charging (no popup). For each queue, jobs are sent
one at a time with `lp` and timed until the document lands in the printer's folder (the
next job waits until CUPS has finished the previous one). The
difference of the medians is what Platen adds: capture, analysis, pricing, authorisation,
the backend's polling, and reporting.

    .venv/bin/python bench/cups_latency.py [--jobs 15]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from platen.localstack.cups import LocalCups, VirtualPrinter
from platen.localstack.services import ServiceProcesses
from platen.testing.documents import make_pdf
from platen.testing.identities import Identities
from platen.testing.infra import provide
from platen.testing.isolation import Vhosts, create_database


def ctl(url: str, *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "platen.ctl", *args],
        check=True,
        env={"PLATEN_AMQP_URL": url, "PATH": ""},
        capture_output=True,
    )


def timed_print(cups: LocalCups, printer: VirtualPrinter, queue: str, doc: Path) -> float:
    """Seconds from `lp` until the document is in the printer's folder. Then (untimed)
    waits for CUPS to finish the job, so that every job starts on an idle queue: CUPS's
    ipp backend keeps a job open for a while after sending it, to watch the printer."""
    before = len(printer.received())
    start = time.perf_counter()
    job = cups.lp(queue, doc, "bench")
    while len(printer.received()) == before:
        if time.perf_counter() - start > 120:
            raise RuntimeError(f"a job on {queue} never arrived")
        time.sleep(0.01)
    took = time.perf_counter() - start
    while cups.job(queue, job).get("job-state") not in ("completed", "canceled", "aborted"):
        if time.perf_counter() - start > 120:
            raise RuntimeError(f"a job on {queue} never completed")
        time.sleep(0.2)
    return took


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--jobs", type=int, default=15)
    args = p.parse_args()
    with provide() as infra:
        vhost, url = Vhosts(infra).create()
        _, db = asyncio.run(create_database(infra.database_url))
        folder = Path(tempfile.mkdtemp(prefix="platen-bench-"))
        folder.chmod(0o755)
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
        cups = LocalCups(folder / "cups", config)
        printer = VirtualPrinter("bench", folder / "printer")
        try:
            ctl(url, "status", "--timeout", "60")
            ctl(url, "printer", "add", "platen", "--price-per-page", "0.01")
            # Timed as capture and charging: no desktop to prove the user, so `trusted`.
            ctl(url, "printer", "identity", "platen", "trusted")
            ctl(url, "user", "add", "bench", "--balance", "100000")
            cups.start()
            printer.start()
            cups.add_queue("platen", printer.uri)
            cups.run("lpadmin", "-p", "direct", "-E", "-v", printer.uri, "-m", "everywhere")
            doc = folder / "doc.pdf"
            doc.write_bytes(make_pdf(3))
            timed_print(cups, printer, "direct", doc)  # warm-up both paths
            timed_print(cups, printer, "platen", doc)
            direct = [timed_print(cups, printer, "direct", doc) for _ in range(args.jobs)]
            platen = [timed_print(cups, printer, "platen", doc) for _ in range(args.jobs)]
            d, pl = statistics.median(direct), statistics.median(platen)
            print(f"infrastructure: {infra.source}; {args.jobs} jobs of 3 pages per queue")
            print(
                f"lp -> printer, direct queue:      median {d * 1000:.0f} ms "
                f"(max {max(direct) * 1000:.0f})"
            )
            print(
                f"lp -> printer, through Platen:    median {pl * 1000:.0f} ms "
                f"(max {max(platen) * 1000:.0f})"
            )
            print(f"extra latency added by Platen:    median {(pl - d) * 1000:.0f} ms")
        finally:
            cups.stop()
            printer.stop()
            services.stop_all()


if __name__ == "__main__":
    main()
