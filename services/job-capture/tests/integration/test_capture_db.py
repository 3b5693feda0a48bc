"""What job-capture records of the document it analysed, against a real PostgreSQL."""

from __future__ import annotations

import base64
import hashlib
import uuid
from decimal import Decimal

from platen.events.jobs import JobAuthorized, JobPriced, SubmitJob
from platen.job_capture import handlers
from platen.job_capture.store import Store
from platen.messaging.handling import apply_in_transaction
from platen.testing.documents import make_pdf


async def submit(pool, document: bytes, *, user: str = "alice") -> uuid.UUID:
    job_id = uuid.uuid4()
    cmd = SubmitJob(
        job_id=job_id,
        user=user,
        printer="lab",
        document_name="report.pdf",
        document=base64.b64encode(document),
        source="cups",
    )
    # Sent as the CUPS backend sends it: signed by its print server's broker identity.
    await apply_in_transaction(
        pool,
        handlers.SERVICE,
        handlers.on_submit,
        cmd,
        user_id="platen-print-server.test",
        store=Store,
    )
    return job_id


async def test_the_sha256_of_the_analysed_document_is_recorded(pool):
    document = make_pdf(2)
    analysed = await submit(pool, document)
    refused = await submit(pool, b"\x1b%-12345X@PJL ENTER LANGUAGE=PCL\n")
    async with pool.acquire() as conn:
        rows = {
            r["job_id"]: r
            for r in await conn.fetch(
                "SELECT job_id, state, reason, pages, document_sha256 FROM jobs"
            )
        }
    assert rows[analysed]["pages"] == 2
    assert rows[analysed]["document_sha256"] == hashlib.sha256(document).hexdigest()
    # A document that was not analysed has no analysed bytes to vouch for.
    assert rows[refused]["state"] == "denied"
    assert "unsupported document format" in rows[refused]["reason"]
    assert rows[refused]["document_sha256"] is None


async def test_a_price_handled_after_the_ledgers_decision_is_still_logged(pool):
    # One queue's deliveries are handled concurrently: the ledger's `job.authorized` can
    # be applied before the `job.priced` it followed. The job stays released and its log
    # row still gets its cost and sides.
    job_id = await submit(pool, make_pdf(3))
    about = {"job_id": job_id, "user": "alice", "printer": "lab", "document_name": "report.pdf"}
    authorized = JobAuthorized(job_id=job_id, user="alice", account="alice", amount=Decimal("0.30"))
    priced = JobPriced(
        **about, sides=3, copies=1, cost=Decimal("0.30"), color_sides=0, grayscale_sides=3
    )
    for handler, event in ((handlers.on_authorized, authorized), (handlers.on_priced, priced)):
        await apply_in_transaction(pool, handlers.SERVICE, handler, event, store=Store)
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT state, cost, charged_amount, grayscale_sides FROM jobs WHERE job_id = $1",
            job_id,
        )
    assert dict(row) == {
        "state": "released",
        "cost": Decimal("0.30"),
        "charged_amount": Decimal("0.30"),
        "grayscale_sides": 3,
    }
