"""Pricing end to end: cost models, schedule versions, policies and quotes, through the four
services as processes on a real broker and database."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from decimal import Decimal

import aio_pika
import pytest

from platen.events.accounts import JobCharged
from platen.events.desktop import DeniedNotice
from platen.events.jobs import JobPriced, SubmitJob
from platen.events.registry import decode
from platen.events.routing import COMMANDS
from platen.rpc.client import signed_in_as
from platen.testing.documents import Page, make_pdf, make_pdf_pages
from tests.e2e.helpers import EventRecorder, command, eventually

D = Decimal

# One running system for the module: each test has users and printers of its own (alice
# and lab-c, bob and lab-1, carol/dave and lab-cg, lab-t) and reads only those.
pytestmark = pytest.mark.shared_system


def report_21_pages_one_colour() -> bytes:
    pages = [Page(marks=("black-text",)) for _ in range(21)]
    pages[6] = Page(marks=("black-text", "color-shape"))
    return make_pdf_pages(pages)


def priced_event(events: EventRecorder, job_id: str) -> JobPriced:
    [raw] = events.of_type("job.priced", job_id)
    return decode(raw.type, raw.headers["platen-schema-version"], raw.body)


async def submit(system, user: str, printer: str, document: bytes, *, duplex: bool) -> str:
    job_id = uuid.uuid4()
    conn = await aio_pika.connect(system.amqp_url)
    async with conn:
        ch = await conn.channel(publisher_confirms=True, on_return_raises=True)
        ex = await ch.get_exchange(COMMANDS)
        cmd = SubmitJob(
            job_id=job_id,
            user=user,
            printer=printer,
            document_name="report.pdf",
            document=base64.b64encode(document),
            duplex=duplex,
        )
        sender = signed_in_as(system.amqp_url)
        await ex.publish(command(cmd, user_id=sender), routing_key=cmd.message_type, mandatory=True)
    return str(job_id)


async def charged(events: EventRecorder, job_id: str, timeout: float = 60) -> JobCharged:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        found = events.of_type("job.charged", job_id)
        if found:
            return decode(found[0].type, found[0].headers["platen-schema-version"], found[0].body)
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} was not charged")


async def test_page_colour_duplex_discount_and_schedule_versions(system):
    system.ctl(
        "printer", "set", "lab-c", "--page", "0.10", "--color-page", "0.50",
        "--duplex-discount", "20",
    )  # fmt: skip
    system.ctl("user", "add", "alice", "--balance", "20.00")
    document = report_21_pages_one_colour()
    path = system.tmp / "report.pdf"
    path.write_bytes(document)

    # A quote goes through the same analysis and pricing, and charges nothing.
    quote = json.loads(
        system.ctl("quote", str(path), "--printer", "lab-c", "--duplex", "--json").stdout
    )
    assert (quote["cost"], quote["schedule_version"]) == ("2.00", 1)
    assert (quote["color_sides"], quote["grayscale_sides"]) == (1, 20)
    text = system.ctl("quote", str(path), "--printer", "lab-c").stdout
    assert "report.pdf on lab-c: 2.50 (schedule version 1)" in text
    assert D(system.user_json("alice")["balance"]) == D("20.00")

    async with EventRecorder(system.amqp_url) as events:
        # Single-sided: 20 grayscale x 0.10 + 1 colour x 0.50 = 2.50.
        simplex = await submit(system, "alice", "lab-c", document, duplex=False)
        assert (await charged(events, simplex)).amount == D("2.50")
        priced = priced_event(events, simplex)
        assert (priced.sides, priced.color_sides, priced.grayscale_sides) == (21, 1, 20)
        assert priced.schedule_version == 1
        assert [(ln.quantity, ln.unit_price, ln.amount) for ln in priced.breakdown] == [
            (20, D("0.10"), D("2.00")),
            (1, D("0.50"), D("0.50")),
        ]

        # Double-sided: 20 % off, 2.50 - 0.50 = 2.00 (11 sheets, the blank back free).
        duplex = await submit(system, "alice", "lab-c", document, duplex=True)
        assert (await charged(events, duplex)).amount == D("2.00")
        priced = priced_event(events, duplex)
        assert priced.duplex is True and priced.cost == D("2.00")
        assert priced.breakdown[-1].description == "double-sided discount, 20 % of 2.50"

        # A new schedule applies to the next job; the jobs before keep version 1.
        changed = json.loads(
            system.ctl(
                "printer", "set", "lab-c", "--page", "0.20", "--color-page", "0.50", "--json"
            ).stdout
        )
        assert changed["schedule_version"] == 2
        later = await submit(system, "alice", "lab-c", document, duplex=False)
        # 20 x 0.20 + 0.50 = 4.50.
        assert (await charged(events, later)).amount == D("4.50")
        assert priced_event(events, later).schedule_version == 2
        assert priced_event(events, simplex).schedule_version == 1

    assert D(system.user_json("alice")["balance"]) == D("20.00") - D("2.50") - D("2.00") - D("4.50")
    shown = json.loads(system.ctl("printer", "show", "lab-c", "--json").stdout)
    assert shown["schedule_version"] == 2
    assert shown["cost_model"]["page"] == "0.20"


async def test_a_job_over_the_page_limit_is_denied_on_the_users_desktop(system):
    system.ctl("printer", "add", "lab-1", "--price-per-page", "0.10")
    system.ctl("printer", "policy", "lab-1", "--max-pages", "100")
    system.ctl("user", "add", "bob", "--balance", "50.00")
    path = system.tmp / "thesis.pdf"
    path.write_bytes(make_pdf(200))

    out = system.ctl(
        "print", str(path), "--user", "bob", "--printer", "lab-1", "--wait", check=False
    )
    assert out.returncode == 2, out.stdout
    assert "at most 100 pages" in out.stdout
    notices = await system.desktop_messages("bob", until=lambda m: isinstance(m, DeniedNotice))
    denied = notices[-1]
    assert isinstance(denied, DeniedNotice)
    assert denied.document_name == "thesis.pdf" and denied.printer == "lab-1"
    assert denied.reason.startswith("this job prints 200 pages and lab-1 takes at most 100")
    bob = system.user_json("bob")
    assert (D(bob["balance"]), D(bob["held"])) == (D("50.00"), D("0.00"))

    # 100 pages is within the limit.
    path.write_bytes(make_pdf(100))
    ok = system.ctl("print", str(path), "--user", "bob", "--printer", "lab-1", "--wait")
    assert "charged 10.00" in ok.stdout

    # Above 50 pages the user must confirm: the ledger asks, with the policy's message.
    system.ctl("printer", "policy", "lab-1", "--max-pages", "100", "--confirm-above-pages", "50")
    path.write_bytes(make_pdf(60))
    async with EventRecorder(system.amqp_url) as events:
        job_id = system.ctl("print", str(path), "--user", "bob", "--printer", "lab-1").stdout
        [raw] = await events.wait_for("job.input_required", 1, timeout=60, user="bob")
        ask = decode(raw.type, raw.headers["platen-schema-version"], raw.body)
        assert str(ask.job_id) == job_id.strip()
        assert ask.kind == "confirm"
        assert ask.messages == ["This job prints 60 pages, more than 50: please confirm it."]


async def test_colour_only_for_a_user_group_through_a_printer_group(system):
    system.ctl("printer", "set", "lab-cg", "--page", "0.10", "--color-page", "0.50")
    system.ctl("printer", "groups", "lab-cg", "colour-printers")
    system.ctl(
        "printer", "policy", "colour-printers", "--group", "--color-groups", "staff",
        "--suggest-grayscale",
    )  # fmt: skip
    # Groups are the ledger's; pricing learns them from user.groups_set.
    system.ctl("user", "add", "carol", "--balance", "10.00", "--group", "staff")
    system.ctl("user", "add", "dave", "--balance", "10.00", "--group", "students")
    path = system.tmp / "poster.pdf"
    path.write_bytes(make_pdf_pages([Page(marks=("color-shape",)), Page(marks=("black-text",))]))

    shown = system.ctl("printer", "show", "lab-cg").stdout
    assert "group colour-printers policy: colour for staff; suggest grayscale" in shown

    denied = system.ctl(
        "print", str(path), "--user", "dave", "--printer", "lab-cg", "--wait", check=False
    )
    assert denied.returncode == 2
    assert "colour printing on lab-cg is only for the groups: staff" in denied.stdout
    ok = system.ctl("print", str(path), "--user", "carol", "--printer", "lab-cg", "--wait")
    assert "charged 0.60" in ok.stdout

    # Moving dave into staff (a ledger change) lets him print colour.
    system.ctl("user", "set", "dave", "--groups", "staff")

    async def quote_for_dave():
        out = system.ctl("quote", str(path), "--printer", "lab-cg", "--user", "dave", "--json")
        found = json.loads(out.stdout)
        return found if found["denied"] is None else None

    quote = await eventually(quote_for_dave)
    assert quote is not None, "pricing never saw dave's new group"
    assert quote["denied"] is None
    assert quote["messages"] == ["Print in grayscale to save colour toner (it would cost 0.20)."]


async def test_invalid_settings_are_refused_and_change_nothing(system):
    system.ctl("printer", "set", "lab-t", "--page", "0.10", "--paper", "A3=0.20,1.00,,0.90")
    for args, error in [
        (["--page", "-0.10"], "the price of a page cannot be negative"),
        (["--page", "0.10", "--paper", "B4=0.20"], "unknown paper size 'B4'"),
        (["--page", "0.10", "--duplex-discount", "150"], "percentage from 0 to 100"),
        (["--page", "0.10", "--per-job", "-1"], "price per job cannot be negative"),
    ]:
        out = system.ctl("printer", "set", "lab-t", *args, check=False)
        assert out.returncode == 1
        assert error in out.stderr
    shown = json.loads(system.ctl("printer", "show", "lab-t", "--json").stdout)
    assert shown["schedule_version"] == 1
    assert shown["cost_model"]["papers"] == [
        {
            "paper": "A3",
            "grayscale": "0.20",
            "color": "1.00",
            "grayscale_duplex": None,
            "color_duplex": "0.90",
        }
    ]
    missing = system.ctl("printer", "show", "nowhere", check=False)
    assert missing.returncode == 1 and "no printer named 'nowhere'" in missing.stderr
    quote = system.ctl("quote", str(_pdf(system)), "--printer", "nowhere", check=False)
    assert quote.returncode == 1 and "not set up for charging" in quote.stderr


def _pdf(system):
    path = system.tmp / "one.pdf"
    path.write_bytes(make_pdf(1))
    return path
