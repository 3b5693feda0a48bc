"""IPP Everywhere printers that take no PDF: CUPS sends them raster, and Platen prices it.

For a printer listing only `image/pwg-raster`, CUPS's `-m everywhere` queue runs
pdftopdf and gstoraster and hands the backend PWG raster; for one that also lists
`image/urf` it prefers Apple raster (rastertopwg writes URF). Either way the Platen
backend captures raster, which job-capture must count, size and colour-check itself.
"""

from __future__ import annotations

from decimal import Decimal as D

from platen.events.registry import decode
from platen.localstack.cups import VirtualPrinter
from platen.testing.documents import Page, make_pdf_pages
from tests.cups.test_cups_capture import COMPLETED, job_state
from tests.e2e.helpers import EventRecorder, ledger_problems

RASTER_PRINTERS = {
    # queue: (formats the printer lists, what CUPS sends it, how the file starts)
    "lab-pwg": ("image/pwg-raster", "pwg-raster", b"RaS2"),
    "lab-urf": ("image/pwg-raster,image/urf", "urf", b"UNIRAST\0"),
}
PAGES = [
    Page(marks=("black-text", "gray-shape")),
    Page(marks=("black-text", "color-shape")),
    Page(marks=("devicegray-shape", "gray-image")),
    Page(marks=("tiny-color-mark",)),
    Page(marks=("rgb-black-text", "rgb-gray-image")),
]


async def test_raster_only_printers_are_priced_by_their_colour_pages_and_charged(system, cups):
    report = system.tmp / "mixed.pdf"
    report.write_bytes(make_pdf_pages(PAGES))
    system.ctl("user", "add", "alice", "--balance", "10.00")
    charged = D("0")
    for queue, (formats, fmt, magic) in RASTER_PRINTERS.items():
        printer = VirtualPrinter(queue, cups.cups.folder.parent / queue)
        cups.printers[queue] = printer  # the fixture stops it
        printer.start(formats=formats)
        cups.cups.add_queue(queue, printer.uri)
        system.ctl("printer", "add", queue, "--price-per-page", "0.10")
        system.ctl("printer", "identity", queue, "trusted")  # as the fixture's queues
        system.ctl("printer", "set", queue, "--page", "0.10", "--color-page", "0.50")
        async with EventRecorder(system.amqp_url) as events:
            job = cups.cups.lp(queue, report, "alice", "media=iso_a4_210x297mm")
            await job_state(cups, queue, job, {COMPLETED}, timeout=90)
            [raw] = await events.wait_for("job.captured", 1, timeout=30)
            [priced] = await events.wait_for("job.priced", 1, timeout=30)
            await events.wait_for("job.charged", 1, timeout=30)
        assert raw.headers["platen-schema-version"] == 4
        captured = decode(raw.type, 4, raw.body)
        assert (captured.format, captured.pages) == (fmt, 5)
        # CUPS reverses the pages for the virtual printer's face-up tray; of five pages,
        # 2 and 4 are still 4 and 2.
        assert captured.color_pages == [2, 4]
        assert captured.paper_sizes == {"A4": 5}
        priced = decode(priced.type, priced.headers["platen-schema-version"], priced.body)
        assert (priced.color_sides, priced.grayscale_sides) == (2, 3)
        assert priced.cost == D("1.30")  # 2 x 0.50 + 3 x 0.10
        charged += priced.cost
        assert printer.proc is not None and printer.proc.poll() is None  # ours answered
        [received] = printer.received()
        assert received.read_bytes().startswith(magic)
    assert D(system.user_json("alice")["balance"]) == D("10.00") - charged
    assert await ledger_problems(system.database_url) == []
