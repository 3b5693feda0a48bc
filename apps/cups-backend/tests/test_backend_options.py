"""What the backend reads from CUPS's arguments, and how it lists devices. Pure logic."""

from platen.cups_backend.devices import wrap
from platen.cups_backend.options import as_printed, filter_work, job_options, parse_options


def test_parse_options_values_flags_and_quotes():
    opts = parse_options(
        "sides=two-sided-long-edge noCollate fit-to-page "
        "job-originating-host-name=ws-12 document-name-supplied='My Doc.pdf'"
    )
    assert opts == {
        "sides": "two-sided-long-edge",
        "Collate": "false",
        "fit-to-page": "true",
        "job-originating-host-name": "ws-12",
        "document-name-supplied": "My Doc.pdf",
    }


def test_job_options_from_a_real_cups_option_string():
    text = (
        "finishings=3 number-up=2 print-color-mode=monochrome sides=two-sided-long-edge "
        "job-uuid=urn:uuid:793e job-originating-host-name=localhost "
        "media=iso_a4_210x297mm ColorModel=Gray"
    )
    o = job_options("3", text)
    assert (o.copies, o.duplex, o.number_up, o.color_mode) == (3, True, 2, "monochrome")
    assert (o.media, o.origin_host) == ("iso_a4_210x297mm", "localhost")


def test_job_options_defaults_and_nonsense():
    o = job_options("many", "number-up=3 sides=one-sided")
    assert (o.copies, o.duplex, o.number_up, o.color_mode) == (1, False, 1, "color")
    assert job_options("5000", "").copies == 999
    assert job_options("2", "ColorModel=Gray").color_mode == "monochrome"


def test_wrapped_device_lines():
    assert wrap('network ipp://printer.local/ipp/print "HP" "Lab printer"') == (
        'network platen:/ipp://printer.local/ipp/print "HP" "Lab printer"'
    )
    assert wrap('direct usb://HP/LaserJet?serial=1 "HP LaserJet" "USB"') == (
        'direct platen:/usb://HP/LaserJet?serial=1 "HP LaserJet" "USB"'
    )
    assert wrap('network platen:/ipp://x "a" "b"') is None
    assert wrap("garbage") is None


FILTERED_PDF = {"CONTENT_TYPE": "application/pdf", "FINAL_CONTENT_TYPE": "application/pdf"}
EVERYWHERE_PPD = (
    '*PPD-Adobe: "4.3"\n*cupsFilter2: "application/vnd.cups-pdf application/pdf 10 -"\n'
)


def test_a_filtered_pdf_job_is_already_imposed_and_holds_one_copy():
    work = filter_work(FILTERED_PDF, EVERYWHERE_PPD)
    assert (work.imposed, work.copies_made) == (True, False)
    o = as_printed(job_options("2", "number-up=2 sides=two-sided-long-edge"), work)
    assert (o.copies, o.number_up, o.duplex) == (2, 1, True)


def test_manual_copies_or_raster_mean_the_document_holds_every_copy():
    manual = EVERYWHERE_PPD + "*cupsManualCopies: True\n"
    assert filter_work(FILTERED_PDF, manual).copies_made is True
    assert (
        filter_work(FILTERED_PDF, EVERYWHERE_PPD + "*cupsManualCopies: False\n").copies_made
        is False
    )
    raster = {"CONTENT_TYPE": "application/pdf", "FINAL_CONTENT_TYPE": "image/pwg-raster"}
    work = filter_work(raster, EVERYWHERE_PPD)
    assert (work.imposed, work.copies_made) == (True, True)
    o = as_printed(job_options("3", "number-up=4"), work)
    assert (o.copies, o.number_up) == (1, 1)


def test_raw_jobs_are_counted_from_the_options():
    raw_queue = {"CONTENT_TYPE": "application/pdf"}  # a raw queue sets no final type
    lp_raw = {"CONTENT_TYPE": "application/vnd.cups-raw", "FINAL_CONTENT_TYPE": "printer/x"}
    for env in (raw_queue, lp_raw, {}):
        work = filter_work(env, EVERYWHERE_PPD + "*cupsManualCopies: True\n")
        assert (work.imposed, work.copies_made) == (False, False)
        o = as_printed(job_options("2", "number-up=2"), work)
        assert (o.copies, o.number_up) == (2, 2)
