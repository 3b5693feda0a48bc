"""N-up and copies through a real cupsd: each is applied once, printed as asked and charged
once. CUPS's filters (pdftopdf) impose N-up before the backend sees the document, and
make the copies themselves only when the queue's PPD says `*cupsManualCopies: True`.

The module's tests share one running system (each has its own print server and a user of
its own), as docs/development.md describes."""

from __future__ import annotations

import asyncio
import io
import re
import uuid
from decimal import Decimal as D

import pikepdf
import pytest

from platen.events.registry import decode
from platen.testing.documents import make_pdf
from tests.cups.test_cups_capture import COMPLETED, job_state
from tests.e2e.helpers import EventRecorder, ledger_problems, query

pytestmark = pytest.mark.shared_system

GET_JOBS = """{
    OPERATION Get-Jobs
    GROUP operation
    ATTR charset attributes-charset utf-8
    ATTR language attributes-natural-language en
    ATTR uri printer-uri $uri
    ATTR keyword which-jobs all
    ATTR keyword requested-attributes job-id,copies
    STATUS successful-ok
    DISPLAY job-id
    DISPLAY copies
}
"""


def lp_copies(rig, queue: str, file, user: str, copies: int, *options: str) -> int:
    argv = ["lp", "-d", queue, "-U", user, "-n", str(copies)]
    for option in options:
        argv += ["-o", option]
    out = rig.cups.run(*argv, str(file))
    return int(re.search(r"request id is \S+-(\d+)", out.stdout).group(1))


def copies_at_printer(rig, printer) -> list[int]:
    """The copies the virtual printer was asked for, per job it received (IPP's default,
    1, when the request carried none)."""
    test = printer.folder / "get-jobs.test"
    test.write_text(GET_JOBS)
    out = rig.cups.run("ipptool", "-c", printer.uri, str(test))
    rows = [line.split(",") for line in out.stdout.splitlines()[1:] if line.strip()]
    return [int(row[1]) if len(row) > 1 and row[1].strip() else 1 for row in rows]


def pages_received(printer) -> list[int]:
    return [len(pikepdf.open(io.BytesIO(f.read_bytes())).pages) for f in printer.received()]


async def print_and_capture(
    system, cups, queue: str, login: str, copies: int, *options: str, pages=4
):
    path = system.tmp / f"four-{queue}.pdf"
    path.write_bytes(make_pdf(pages))
    async with EventRecorder(system.amqp_url) as events:
        job = lp_copies(cups, queue, path, login, copies, *options)

        # The system is shared: only this user's job is looked at.
        [raw] = await events.wait_for("job.captured", 1, timeout=60, user=login)
        await job_state(cups, queue, job, {COMPLETED}, timeout=90)
        await events.wait_for("job.charged", 1, timeout=60, job_id=raw.correlation_id)
        await asyncio.sleep(1)
        assert len(events.of_type("job.charged", raw.correlation_id)) == 1
        assert len(events.of_type("job.captured", user=login)) == 1
    return decode(raw.type, 2, raw.body)


async def test_number_up_2_and_two_copies_print_and_charge_once(system, cups):
    system.ctl("printer", "add", "lab-color", "--price-per-page", "0.10")
    system.ctl("user", "add", "nia", "--balance", "5.00")
    printer = cups.printers["lab-color"]
    captured = await print_and_capture(system, cups, "lab-color", "nia", 2, "number-up=2")
    # pdftopdf put the 4 pages 2-up: the backend has 2 pages, each one printed side,
    # so job-capture is told number-up 1 and does not halve them again.
    assert (captured.pages, captured.number_up, captured.copies) == (2, 1, 2)
    assert (captured.sides, captured.sheets) == (2, 2)
    # The printer got the imposed document once and was asked for 2 copies of it.
    assert pages_received(printer) == [2]
    [received] = printer.received()
    # The rest of the analysis job-capture published, for the document it was sent.
    assert captured.format == "pdf" and captured.color_pages == []
    assert captured.size_bytes == received.stat().st_size
    assert captured.analysis_ms > 0
    # The 2-up sheets are on the queue's own paper, not the document's A4.
    ppd = cups.cups.ppd("lab-color")
    paper = re.search(r"^\*DefaultPageSize: (\w+)", ppd, re.MULTILINE).group(1)
    assert captured.paper_sizes == {paper: 2}, paper
    # No deadline configured for this printer: job-capture's default, 600 s.
    [row] = await query(
        system.database_url,
        "SELECT extract(epoch FROM deadline_at - submitted_at) AS s FROM job_capture.jobs"
        " WHERE job_id = $1",
        uuid.UUID(str(captured.job_id)),
    )
    assert row["s"] == 600
    assert copies_at_printer(cups, printer) == [2]
    # 2 sides x 2 copies at 0.10 a side.
    assert D(system.user_json("nia")["balance"]) == D("4.60")
    assert await ledger_problems(system.database_url) == []


async def test_copies_made_by_the_filters_are_not_made_again(system, cups):
    """A queue whose PPD makes CUPS's filters print every copy into the document."""
    printer = cups.printers["lab-color"]
    manual = cups.cups.folder / "manual-copies.ppd"
    manual.write_text(cups.cups.ppd("lab-color") + "*cupsManualCopies: True\n")
    cups.cups.run("lpadmin", "-p", "lab-manual", "-E", "-v", printer.uri, "-P", str(manual))
    cups.cups.run("lpadmin", "-p", "lab-manual", "-v", f"platen:/{printer.uri}")
    cups.cups.run("cupsenable", "lab-manual")
    cups.cups.run("cupsaccept", "lab-manual")
    system.ctl("printer", "add", "lab-manual", "--price-per-page", "0.10")
    system.ctl("printer", "identity", "lab-manual", "trusted")  # as the fixture's queues
    system.ctl("user", "add", "oli", "--balance", "5.00")
    captured = await print_and_capture(system, cups, "lab-manual", "oli", 3, pages=2)
    # The document holds all three copies: charged as one copy of 6 pages...
    assert (captured.pages, captured.copies, captured.number_up) == (6, 1, 1)
    assert (captured.sides, captured.sheets) == (6, 6)
    # ...and printed once, not three times over.
    assert pages_received(printer) == [6]
    assert copies_at_printer(cups, printer) == [1]
    assert D(system.user_json("oli")["balance"]) == D("4.40")
    assert await ledger_problems(system.database_url) == []
