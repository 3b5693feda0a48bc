"""How desktop messages read in a terminal (console_line) and as JSON lines (json_line)."""

import json
import uuid
from decimal import Decimal

import msgspec
import pytest

from platen.client.contract import BalanceNotice, ClientOptionsNotice, DeniedNotice, PrintedNotice
from platen.client.formatting import console_line, json_line, pages

JOB_ID = uuid.UUID("0f0e0d0c-0b0a-0908-0706-050403020100")


def printed(**overrides) -> PrintedNotice:
    fields = {
        "job_id": JOB_ID,
        "document_name": "report.pdf",
        "printer": "lab-1",
        "sides": 3,
        "copies": 1,
        "cost": "0.30",
        "balance": "4.70",
    }
    fields.update(overrides)
    return PrintedNotice(**fields)


def test_printed_line():
    assert console_line(printed()) == 'Printed "report.pdf" on lab-1: 3 pages, 0.30. Balance 4.70'


def test_printed_line_with_one_page_is_singular():
    line = console_line(printed(sides=1, cost="0.10", balance="4.90"))
    assert line == 'Printed "report.pdf" on lab-1: 1 page, 0.10. Balance 4.90'


def test_printed_line_shows_copies():
    line = console_line(printed(sides=3, copies=2, cost="0.60", balance="4.40"))
    assert line == 'Printed "report.pdf" on lab-1: 3 pages x 2 copies, 0.60. Balance 4.40'


def test_printed_line_keeps_a_negative_balance():
    line = console_line(printed(cost="0.30", balance="-0.25"))
    assert line.endswith("0.30. Balance -0.25")


@pytest.mark.parametrize(("n", "text"), [(0, "0 pages"), (1, "1 page"), (2, "2 pages")])
def test_pages_wording(n, text):
    assert pages(n) == text


def test_denied_line_shows_the_reason():
    notice = DeniedNotice(
        job_id=JOB_ID,
        document_name="thesis.pdf",
        printer="lab-2",
        reason="insufficient credit: this job costs 5.01, your available balance is 5.00",
    )
    assert console_line(notice) == (
        'Denied "thesis.pdf" on lab-2: '
        "insufficient credit: this job costs 5.01, your available balance is 5.00"
    )


def test_balance_line():
    notice = BalanceNotice(balance="10.00", available="9.40")
    assert console_line(notice) == "Balance 10.00 (available 9.40)"


def test_other_messages_fall_back_to_type_and_json():
    # The client reads only the desktop's messages (platen.client.contract): of those, the
    # server's options have no line of their own.
    line = console_line(ClientOptionsNotice(revision=3, options={"title": "Lab 2"}))
    prefix = "desktop.client_options: "
    assert line.startswith(prefix)
    assert json.loads(line[len(prefix) :]) == {"revision": 3, "options": {"title": "Lab 2"}}


def test_json_line_for_a_printed_notice():
    data = json.loads(json_line(printed()))
    assert data == {
        "type": "desktop.job_printed",
        "job_id": "0f0e0d0c-0b0a-0908-0706-050403020100",
        "document_name": "report.pdf",
        "printer": "lab-1",
        "sides": 3,
        "copies": 1,
        "cost": "0.30",
        "balance": "4.70",
    }
    assert isinstance(data["cost"], str)
    assert isinstance(data["balance"], str)


def test_json_line_money_is_never_a_float():
    line = json_line(BalanceNotice(balance=Decimal("0.10"), available=Decimal("-1.05")))
    data = json.loads(line, parse_float=lambda s: pytest.fail(f"float in JSON: {s}"))
    assert data == {"type": "desktop.balance", "balance": "0.10", "available": "-1.05"}


def test_json_line_for_a_denied_notice():
    notice = DeniedNotice(
        job_id=JOB_ID, document_name="a.pdf", printer="lab-1", reason='quote " and \n newline'
    )
    line = json_line(notice)
    assert "\n" not in line  # one message, one line
    data = json.loads(line)
    assert data["type"] == "desktop.job_denied"
    assert data["reason"] == 'quote " and \n newline'


def test_low_credit_line_names_the_balance_and_threshold():
    from platen.client.contract import LowBalanceNotice

    line = console_line(
        LowBalanceNotice(
            balance=Decimal("0.90"), available=Decimal("0.90"), threshold=Decimal("1.00")
        )
    )
    assert line.startswith("Low credit: your available balance is 0.90 (below 1.00)")


def test_the_sites_own_wording_replaces_the_clients_when_the_server_sends_it():
    from platen.client.contract import LowBalanceNotice

    low = LowBalanceNotice(
        balance=Decimal("0.90"),
        available=Decimal("0.90"),
        threshold=Decimal("1.00"),
        text="Top up at the library desk: 0.90 left",
    )
    assert console_line(low) == "Top up at the library desk: 0.90 left"
    denied = DeniedNotice(
        job_id=JOB_ID, document_name="a.pdf", printer="lab-1", reason="no", text="Refused: no"
    )
    assert console_line(denied) == "Refused: no"
    # Without it, the client's own (translated) text.
    assert console_line(msgspec.structs.replace(denied, text=None)).startswith('Denied "a.pdf"')
