"""What the backend reads from CUPS's arguments, and how it lists devices. Pure logic."""

from platen.cups_backend.devices import wrap
from platen.cups_backend.options import job_options, parse_options


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
