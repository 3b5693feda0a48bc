"""What a raw or PostScript job is charged as, and the PostScript conversion run once on
the print server (with the real Ghostscript)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pikepdf
import pytest

from platen.cups_backend.as_sent import (
    charge_as_sent,
    is_raw,
    prepare,
    without_price_options,
)
from platen.cups_backend.options import job_options, parse_options
from platen.cups_backend.postscript import (
    ConversionFailed,
    convert,
    is_postscript,
    target_format,
)
from platen.testing.documents import (
    Page,
    make_device_detecting_postscript,
    make_pdf,
    make_postscript,
)

# What cupsd 2.4 gives a backend (seen): `lp -o raw`, a filtered PDF job, a raw queue.
RAW_JOB = {
    "CONTENT_TYPE": "application/vnd.cups-raw",
    "FINAL_CONTENT_TYPE": "application/octet-stream",
}
FILTERED_PDF = {"CONTENT_TYPE": "application/pdf", "FINAL_CONTENT_TYPE": "application/pdf"}
FILTERED_PS = {"CONTENT_TYPE": "application/pdf", "FINAL_CONTENT_TYPE": "application/postscript"}
RAW_QUEUE = {"CONTENT_TYPE": "application/pdf"}
CHEAP = (
    "finishings=3 number-up=16 number-up-layout=btlr print-color-mode=monochrome "
    "sides=two-sided-long-edge ColorModel=Gray job-originating-host-name=ws-1 "
    "document-name-supplied='My report.pdf' media=iso_a4_210x297mm"
)
EVERYWHERE_PPD = (
    '*cupsFilter2: "application/vnd.cups-pdf application/pdf 10 -"\n'
    '*cupsFilter2: "image/pwg-raster image/pwg-raster 100 -"\n'
)
RASTER_PPD = '*cupsFilter2: "image/pwg-raster image/pwg-raster 100 -"\n'


def test_raw_is_what_skipped_the_filters():
    assert is_raw(RAW_JOB) and is_raw(RAW_QUEUE)
    assert not is_raw(FILTERED_PDF) and not is_raw(FILTERED_PS)


def test_a_raw_job_is_charged_as_sent_whatever_its_options_ask():
    asked = job_options("3", CHEAP)
    assert (asked.number_up, asked.color_mode, asked.duplex) == (16, "monochrome", True)
    charged = charge_as_sent(asked)
    assert (charged.number_up, charged.color_mode, charged.duplex) == (1, "color", False)
    # Copies only raise the price (and the printer is told them): kept.
    assert charged.copies == 3
    assert (charged.media, charged.origin_host) == (asked.media, asked.origin_host)


def test_the_printer_is_not_told_the_options_that_were_not_charged():
    kept = parse_options(without_price_options(CHEAP))
    assert kept == {
        "finishings": "3",
        "job-originating-host-name": "ws-1",
        "document-name-supplied": "My report.pdf",
        "media": "iso_a4_210x297mm",
    }


def test_postscript_is_recognised_even_behind_a_control_d():
    assert is_postscript(b"%!PS-Adobe-3.0\n")
    assert is_postscript(b"\x04\r\n  %!PS\n")
    assert not is_postscript(b"%PDF-1.7\n")
    assert not is_postscript(b"RaS2")


def test_postscript_becomes_what_the_printer_takes():
    assert target_format(FILTERED_PS, EVERYWHERE_PPD, raw=False) == "ps"
    assert target_format(FILTERED_PDF, EVERYWHERE_PPD, raw=False) == "pdf"
    assert target_format(RAW_JOB, EVERYWHERE_PPD, raw=True) == "pdf"
    assert target_format(RAW_JOB, RASTER_PPD, raw=True) == "ps"
    assert target_format(RAW_QUEUE, None, raw=True) == "ps"


def ink_pages(document: Path) -> int:
    """Pages a document prints on the device job-capture analyses PostScript with."""
    out = subprocess.run(
        [
            "gs",
            "-dSAFER",
            "-dBATCH",
            "-dNOPAUSE",
            "-q",
            "-sDEVICE=ink_cov",
            "-o",
            "-",
            str(document),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return sum(1 for line in out.stdout.splitlines() if "CMYK OK" in line)


def test_the_hostile_document_really_behaves_differently_under_analysis(tmp_path):
    source = tmp_path / "hostile.ps"
    source.write_bytes(make_device_detecting_postscript(analysed=1, printed=20))
    assert ink_pages(source) == 1
    converted = tmp_path / "printed.pdf"
    convert(source, converted, "pdf", max_bytes=10**7)
    assert len(pikepdf.open(converted).pages) == 20


def test_regenerated_postscript_prints_under_analysis_what_it_drew(tmp_path):
    source = tmp_path / "hostile.ps"
    source.write_bytes(make_device_detecting_postscript(analysed=1, printed=20))
    converted = tmp_path / "printed.ps"
    convert(source, converted, "ps", max_bytes=10**7)
    assert converted.read_bytes().startswith(b"%!PS")
    # ps2write's output no longer tests the device: analysed, it shows the 20 pages.
    assert ink_pages(converted) == 20


def test_a_postscript_error_a_runaway_loop_or_too_much_output_is_refused(tmp_path):
    # (program, what is said, the time limit): the error's limit is far beyond its run, so
    # that a loaded machine's slow Ghostscript start is not taken for a runaway loop.
    cases = [
        (b"%!PS\n1 0 div\n", "stops with an error", 60),
        (b"%!PS\n{} loop\n", "takes too long", 3),
    ]
    for program, reason, timeout in cases:
        source = tmp_path / "bad.ps"
        source.write_bytes(program)
        with pytest.raises(ConversionFailed, match=reason):
            convert(source, tmp_path / "out.pdf", "pdf", max_bytes=10**7, timeout=timeout)
    source = tmp_path / "big.ps"
    source.write_bytes(make_device_detecting_postscript(analysed=1, printed=200))
    with pytest.raises(ConversionFailed, match="prints too much"):
        convert(source, tmp_path / "out.pdf", "pdf", max_bytes=2000)


def test_prepare_converts_raw_postscript_for_a_pdf_printer(tmp_path):
    source = tmp_path / "document"
    source.write_bytes(make_postscript([Page(marks=("color-shape",))] * 3))
    sent = prepare(source, RAW_JOB, EVERYWHERE_PPD, job_options("2", CHEAP), CHEAP, max_bytes=10**7)
    # The backend's paths are strings (no `pathlib` on a job's start).
    assert sent.document != source and Path(sent.document).read_bytes().startswith(b"%PDF-")
    assert len(pikepdf.open(sent.document).pages) == 3
    assert sent.content_type == "application/pdf"
    assert (sent.options.number_up, sent.options.color_mode, sent.options.copies) == (1, "color", 2)
    assert "number-up" not in parse_options(sent.inner_options)


def test_prepare_leaves_a_filtered_pdf_and_its_options_alone(tmp_path):
    source = tmp_path / "document"
    source.write_bytes(make_pdf(2))
    asked = job_options("1", CHEAP)
    sent = prepare(source, FILTERED_PDF, EVERYWHERE_PPD, asked, CHEAP, max_bytes=10**7)
    assert (sent.document, sent.options, sent.inner_options, sent.content_type) == (
        source,
        asked,
        CHEAP,
        None,
    )


def test_prepare_regenerates_filtered_postscript_as_postscript(tmp_path):
    source = tmp_path / "document"
    source.write_bytes(make_device_detecting_postscript(analysed=1, printed=5))
    sent = prepare(source, FILTERED_PS, None, job_options("1", ""), "", max_bytes=10**7)
    assert Path(sent.document).read_bytes().startswith(b"%!PS") and sent.content_type is None
    assert ink_pages(Path(sent.document)) == 5


def test_a_conversion_killed_on_a_limit_leaves_no_ghostscript_files(tmp_path, monkeypatch):
    # pdfwrite keeps its streams in gs_* files in TMPDIR and removes them only when it
    # ends on its own: a Ghostscript killed on the time or output limit left them in
    # cupsd's temporary folder, up to the output limit each, for every hostile job.
    shared = tmp_path / "cups-tmp"
    shared.mkdir()
    monkeypatch.setenv("TMPDIR", str(shared))
    source = tmp_path / "slow.ps"
    source.write_bytes(
        b"%!PS\n/Helvetica findfont 12 scalefont setfont 72 72 moveto (x) show\n{} loop\n"
    )
    with pytest.raises(ConversionFailed, match="takes too long"):
        convert(source, tmp_path / "out.pdf", "pdf", max_bytes=10**7, timeout=2)
    big = tmp_path / "big.ps"
    big.write_bytes(make_device_detecting_postscript(analysed=1, printed=200))
    with pytest.raises(ConversionFailed, match="prints too much"):
        convert(big, tmp_path / "out.pdf", "pdf", max_bytes=2000)
    assert sorted(p.name for p in shared.iterdir()) == []
