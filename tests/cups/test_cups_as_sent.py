"""What is analysed is what is printed, through a real cupsd and virtual printers.

A raw job (`lp -o raw`) skips CUPS's filters: its options never lower its price, and the
printer is not told them. PostScript is run once, on the print server: what it drew is
analysed, charged and printed, so a program that tests whether it is being analysed
prints what it showed. For every format, filtered or raw, the file the virtual printer
received has the SHA-256 job-capture recorded for the document it analysed.

The module's tests share one running system (each has its own print server, cupsd and
virtual printers, and a user of its own), as docs/development.md describes.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import uuid
from decimal import Decimal as D

import pikepdf
import pytest

from platen.events.registry import decode
from platen.testing.documents import (
    Page,
    make_device_detecting_postscript,
    make_pdf_pages,
    make_postscript,
    make_raster,
)
from tests.cups.test_cups_capture import ABORTED, CANCELED, COMPLETED, job_state
from tests.e2e.helpers import EventRecorder, ledger_problems, query

pytestmark = pytest.mark.shared_system

COLOUR_PAGE = Page(marks=("color-shape",))
CHEAP = ("number-up=16", "print-color-mode=monochrome", "sides=two-sided-long-edge")
PRINTER_JOB_OPTIONS = """{
    OPERATION Get-Jobs
    GROUP operation
    ATTR charset attributes-charset utf-8
    ATTR language attributes-natural-language en
    ATTR uri printer-uri $uri
    ATTR keyword which-jobs all
    ATTR keyword requested-attributes job-id,number-up,print-color-mode,sides
    STATUS successful-ok
    DISPLAY job-id
    DISPLAY number-up
    DISPLAY print-color-mode
    DISPLAY sides
}
"""


def priced_printer(system, queue: str) -> None:
    system.ctl("printer", "add", queue, "--price-per-page", "0.10")
    system.ctl("printer", "set", queue, "--page", "0.10", "--color-page", "0.50")


def decoded(raw):
    return decode(raw.type, raw.headers["platen-schema-version"], raw.body)


async def print_one(system, rig, queue: str, login: str, name: str, content: bytes, *options: str):
    """Print `content` as `login` and wait until it is printed and charged: (captured,
    cost, the file the virtual printer received, the SHA-256 job-capture recorded)."""
    printer = rig.printers[queue]
    before = set(printer.received())
    path = system.tmp / name
    path.write_bytes(content)
    async with EventRecorder(system.amqp_url) as events:
        job = rig.cups.lp(queue, path, login, *options)
        # The system is shared: only this user's job is looked at.
        [raw] = await events.wait_for("job.captured", 1, timeout=90, user=login)
        await job_state(rig, queue, job, {COMPLETED}, timeout=120)
        [priced] = await events.wait_for("job.priced", 1, timeout=30, job_id=raw.correlation_id)
        await events.wait_for("job.charged", 1, timeout=30, job_id=raw.correlation_id)
    captured = decoded(raw)
    priced = decoded(priced)
    [received] = sorted(set(printer.received()) - before)
    [row] = await query(
        system.database_url,
        "SELECT document_sha256 FROM job_capture.jobs WHERE job_id = $1",
        uuid.UUID(str(captured.job_id)),
    )
    return captured, priced.cost, received, row["document_sha256"]


def pdf_pages(path) -> int:
    return len(pikepdf.open(io.BytesIO(path.read_bytes())).pages)


def analysis_device_pages(path) -> int:
    """Pages a PostScript file draws on the device job-capture analyses PostScript with."""
    out = subprocess.run(
        ["gs", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-q", "-sDEVICE=ink_cov", "-o", "-", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return sum(1 for line in out.stdout.splitlines() if "CMYK OK" in line)


def options_at_printer(rig, printer) -> list[list[str]]:
    """number-up, print-color-mode and sides of each job the virtual printer got."""
    test = printer.folder / "job-options.test"
    test.write_text(PRINTER_JOB_OPTIONS)
    out = rig.cups.run("ipptool", "-c", printer.uri, str(test))
    return [line.split(",")[1:] for line in out.stdout.splitlines()[1:] if line.strip()]


async def test_raw_jobs_are_charged_as_the_printer_receives_them(system, cups):
    """`lp -o raw -o number-up=16 -o print-color-mode=monochrome` with 16 colour pages,
    as PDF and as PostScript: charged as 16 colour pages, which is what is printed."""
    priced_printer(system, "lab-color")
    system.ctl("user", "add", "ann", "--balance", "20.00")
    printer = cups.printers["lab-color"]
    documents = {
        "sixteen.pdf": make_pdf_pages([COLOUR_PAGE] * 16),
        "sixteen.ps": make_postscript([COLOUR_PAGE] * 16),
    }
    for name, content in documents.items():
        captured, cost, received, sha = await print_one(
            system, cups, "lab-color", "ann", name, content, "raw", *CHEAP
        )
        assert (captured.number_up, captured.color_mode, captured.duplex) == (1, "color", False)
        assert (captured.pages, len(captured.color_pages)) == (16, 16), name
        assert cost == 16 * D("0.50")
        # The printer got 16 pages (PostScript as the PDF the print server made of it)...
        assert received.read_bytes().startswith(b"%PDF-")
        assert pdf_pages(received) == 16
        # ...the very bytes analysed.
        assert hashlib.sha256(received.read_bytes()).hexdigest() == sha
        if name.endswith(".pdf"):
            assert received.read_bytes() == content  # raw: untouched
    # Nor was the printer told to print them 16-up, in monochrome or two-sided.
    for job in options_at_printer(cups, printer):
        assert "16" not in job and "monochrome" not in job
        assert not any(value.startswith("two-sided") for value in job)
    assert D(system.user_json("ann")["balance"]) == D("20.00") - 32 * D("0.50")
    assert await ledger_problems(system.database_url) == []


@pytest.mark.parametrize(
    ("queue", "raw", "login"),
    [
        ("lab-color", False, "bea"),
        ("lab-color", True, "cal"),
        ("lab-ps", False, "dan"),
        ("lab-ps", True, "eve"),
    ],
    ids=["pdf-printer-filtered", "pdf-printer-raw", "ps-printer-filtered", "ps-printer-raw"],
)
async def test_postscript_that_detects_analysis_is_charged_for_what_it_prints(
    system, format_queues, queue, raw, login
):
    """A program that draws 1 page on job-capture's analysis device and 20 elsewhere. A
    PDF printer gets the PDF it drew; a PostScript printer gets PostScript regenerated
    from what it drew, which draws 20 pages even on the analysis device."""
    cups = format_queues
    priced_printer(system, queue)
    system.ctl("user", "add", login, "--balance", "20.00")
    hostile = make_device_detecting_postscript(analysed=1, printed=20)
    options = ("raw",) if raw else ()
    captured, cost, received, sha = await print_one(
        system, cups, queue, login, "hostile.ps", hostile, *options
    )
    if queue == "lab-ps":
        assert received.read_bytes().startswith(b"%!PS")
        assert captured.format == "postscript"
        assert analysis_device_pages(received) == 20
    else:
        assert captured.format == "pdf"
        assert pdf_pages(received) == 20
    assert (captured.pages, len(captured.color_pages)) == (20, 20)
    assert cost == 20 * D("0.50")
    assert hashlib.sha256(received.read_bytes()).hexdigest() == sha
    assert D(system.user_json(login)["balance"]) == D("20.00") - cost
    assert await ledger_problems(system.database_url) == []


# Two red pages whose ink controls would erase their colour in the analysis's rendering
# (services/job-capture/tests/unit/test_postscript_ink_controls.py has every variant).
INK_HIDING_POSTSCRIPT = b"""%!PS
{pop 1} setundercolorremoval {pop 0} setblackgeneration
1 0 0 setrgbcolor 100 100 200 200 rectfill showpage
{pop 1} systemdict /settransfer get exec
0 0 1 setrgbcolor 100 100 200 200 rectfill showpage
"""


@pytest.mark.parametrize(
    ("queue", "raw", "login"),
    [
        ("lab-color", False, "hal"),
        ("lab-color", True, "ida"),
        ("lab-ps", False, "jon"),
        ("lab-ps", True, "kim"),
    ],
    ids=["pdf-printer-filtered", "pdf-printer-raw", "ps-printer-filtered", "ps-printer-raw"],
)
async def test_postscript_that_hides_its_colour_from_the_analysis_is_charged_as_colour(
    system, format_queues, queue, raw, login
):
    """Red and blue pages that set undercolour removal and transfer functions that would
    leave no coloured ink in job-capture's rendering: charged as the colour pages the
    printer prints, whatever the print server made of them."""
    cups = format_queues
    priced_printer(system, queue)
    system.ctl("user", "add", login, "--balance", "20.00")
    options = ("raw",) if raw else ()
    captured, cost, received, sha = await print_one(
        system, cups, queue, login, "hiding.ps", INK_HIDING_POSTSCRIPT, *options
    )
    assert (captured.pages, list(captured.color_pages)) == (2, [1, 2])
    assert cost == 2 * D("0.50")
    assert hashlib.sha256(received.read_bytes()).hexdigest() == sha
    assert D(system.user_json(login)["balance"]) == D("20.00") - cost
    assert await ledger_problems(system.database_url) == []


# Two pages in spot colours named after the black ink whose alternate is red and blue: an
# RGB printer prints them in colour (test_separations has every variant).
SPOT_HIDING_POSTSCRIPT = b"""%!PS
[/Separation /Black /DeviceRGB {pop 1 0 0}] setcolorspace 1 setcolor
100 100 200 200 rectfill showpage
[/DeviceN [/Black /None] /DeviceRGB {pop pop 0 0 1}] systemdict /setcolorspace get exec
1 0 setcolor 100 100 200 200 rectfill showpage
"""


@pytest.mark.parametrize(
    ("queue", "raw", "login"),
    [
        ("lab-color", False, "lea"),
        ("lab-color", True, "max"),
        ("lab-ps", False, "ned"),
        ("lab-ps", True, "ola"),
    ],
    ids=["pdf-printer-filtered", "pdf-printer-raw", "ps-printer-filtered", "ps-printer-raw"],
)
async def test_spot_colours_named_after_the_black_ink_are_charged_as_colour(
    system, format_queues, queue, raw, login
):
    """Red and blue pages in Separation and DeviceN spaces whose colorant is Black: charged
    as the colour pages an RGB printer prints, whatever the print server made of them."""
    cups = format_queues
    priced_printer(system, queue)
    system.ctl("user", "add", login, "--balance", "20.00")
    options = ("raw",) if raw else ()
    captured, cost, received, sha = await print_one(
        system, cups, queue, login, "spot.ps", SPOT_HIDING_POSTSCRIPT, *options
    )
    assert (captured.pages, list(captured.color_pages)) == (2, [1, 2])
    assert cost == 2 * D("0.50")
    assert hashlib.sha256(received.read_bytes()).hexdigest() == sha
    assert D(system.user_json(login)["balance"]) == D("20.00") - cost
    assert await ledger_problems(system.database_url) == []


async def test_the_bytes_printed_are_the_bytes_analysed(system, format_queues):
    """PDF and raster, filtered and raw, to a PDF printer and to a raster-only one."""
    cups = format_queues
    for queue in ("lab-color", "lab-raster"):
        priced_printer(system, queue)
    system.ctl("user", "add", "fay", "--balance", "20.00")
    pdf = make_pdf_pages([COLOUR_PAGE, Page(marks=("black-text",)), COLOUR_PAGE])
    raster = make_raster(pdf, fmt="pwg", dpi=50)
    jobs = [
        ("lab-color", "filtered.pdf", pdf, (), "pdf"),
        ("lab-raster", "filtered-to-raster.pdf", pdf, (), "pwg-raster"),
        ("lab-raster", "raw.pwg", raster, ("raw", *CHEAP), "pwg-raster"),
    ]
    for queue, name, content, options, fmt in jobs:
        captured, cost, received, sha = await print_one(
            system, cups, queue, "fay", name, content, *options
        )
        assert captured.format == fmt, name
        assert (captured.pages, len(captured.color_pages)) == (3, 2), name
        assert hashlib.sha256(received.read_bytes()).hexdigest() == sha, name
        if options:
            assert received.read_bytes() == content
            assert cost == 2 * D("0.50") + D("0.10")
    assert await ledger_problems(system.database_url) == []


async def test_a_raw_document_platen_cannot_analyse_is_refused_with_the_reason(system, cups):
    """PCL (here behind a PJL header, as drivers write it) sent raw: never printed, never
    charged; CUPS shows why, and job-capture announces the denial for the desktop."""
    priced_printer(system, "lab-color")
    system.ctl("user", "add", "gus", "--balance", "20.00")
    path = system.tmp / "driver-output.prn"
    path.write_bytes(b"\x1b%-12345X@PJL ENTER LANGUAGE=PCL\r\n\x1bE\x1b&l0O page\x0c\x1bE")
    async with EventRecorder(system.amqp_url) as events:
        job = cups.cups.lp("lab-color", path, "gus", "raw")
        [raw] = await events.wait_for("job.denied", 1, timeout=90, user="gus")
        info = await job_state(cups, "lab-color", job, {CANCELED, ABORTED})
    denied = decoded(raw)
    assert denied.user == "gus" and "unsupported document format" in denied.reason
    assert "unsupported document format" in info["job-printer-state-message"]
    assert cups.printers["lab-color"].received() == []
    assert D(system.user_json("gus")["balance"]) == D("20.00")
