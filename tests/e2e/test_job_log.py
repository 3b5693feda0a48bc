"""The job log end to end: `platenctl jobs` shows what a job was priced for, the account
that paid and the comment its user gave, and is filtered as an administrator reads it."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import datetime, timedelta
from decimal import Decimal as D

from platen import rpc
from platen.events.accounts import AnswerJob
from platen.testing.documents import Page, make_pdf_pages
from tests.e2e.helpers import EventRecorder


async def test_a_colour_duplex_job_charged_to_a_shared_account_with_a_comment(system):
    system.ctl("printer", "set", "lab-c", "--page", "0.10", "--color-page", "0.50")
    system.ctl("user", "add", "uma", "--balance", "5.00", "--group", "physics")
    system.ctl("user", "set", "uma", "--selection", "choose")
    system.ctl("account", "add", "physics", "--no-restricted")
    system.ctl("account", "grant", "physics", "--group", "physics")
    colour, plain = Page(marks=("color-shape",)), Page(marks=("black-text",))
    path = system.tmp / "report.pdf"
    path.write_bytes(make_pdf_pages([plain, colour, plain, colour, plain]))

    async with EventRecorder(system.amqp_url) as events:
        out = system.ctl("print", str(path), "--user", "uma", "--printer", "lab-c", "--duplex")
        job_id = out.stdout.split()[0]
        await events.wait_for("job.input_required")
        # Uma's answer, as the notification service forwards it from her desktop.
        async with rpc.connect(system.ids.services["notification"]) as client:
            await client.request(
                "ledger.job.answer",
                AnswerJob(
                    job_id=uuid.UUID(job_id),
                    user="uma",
                    action="print",
                    account="physics",
                    comment="grant 4711",
                ),
            )
        await events.wait_for("job.charged")

    [job] = json.loads(system.ctl("jobs", "--json").stdout)
    assert job["job_id"] == job_id and job["state"] == "printed"
    assert (job["pages"], job["sides"], job["color_sides"], job["grayscale_sides"]) == (5, 5, 2, 3)
    assert job["duplex"] is True and job["paper_sizes"] == {"A4": 5} and job["copies"] == 1
    assert (job["account"], D(job["amount"]), D(job["cost"])) == (
        "shared:physics",
        D("1.30"),
        D("1.30"),
    )
    assert job["comment"] == "grant 4711" and job["source"] == "api"

    rows = list(csv.DictReader(io.StringIO(system.ctl("jobs", "--csv").stdout)))
    assert [(r["job_id"], r["account"], r["comment"], r["paper_sizes"]) for r in rows] == [
        (job_id, "shared:physics", "grant 4711", "A4:5")
    ]
    # Filters: by account, printer, user and dates (a job of its own day, not of the next).
    # The day is the job's, read in local time as `--since` reads a date, so a run that
    # crosses midnight asks for the right one.
    today = datetime.fromisoformat(job["submitted_at"]).astimezone().date()
    tomorrow = today + timedelta(days=1)
    for args, found in [
        (["--account", "shared:physics"], 1),
        (["--account", "personal:uma"], 0),
        (["--printer", "lab-c", "--user", "uma"], 1),
        (["--printer", "other"], 0),
        (["--since", today.isoformat(), "--until", tomorrow.isoformat()], 1),
        (["--since", tomorrow.isoformat()], 0),
    ]:
        assert len(json.loads(system.ctl("jobs", *args, "--json").stdout)) == found, args
    line = system.ctl("jobs").stdout
    assert "2c/3g duplex" in line and "shared:physics" in line
