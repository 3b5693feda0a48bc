"""The broker's largest message and job-capture's largest document agree: a submit of the
largest document job-capture accepts passes the broker's `max_message_size`, so a document
is refused by job-capture with a reason the user sees, never by the broker without one."""

from __future__ import annotations

import base64
import uuid

from platen.broker_setup.broker_limits import MAX_MESSAGE_BYTES
from platen.events.jobs import SubmitJob
from platen.events.registry import encode
from platen.job_capture import handlers

# AMQP properties and headers (type, ids, user_id, version, marks) beside the body: a few
# hundred bytes in practice, allowed generously.
HEADROOM = 64 * 1024


def test_the_largest_document_job_capture_accepts_fits_the_brokers_largest_message():
    largest = SubmitJob(
        job_id=uuid.uuid4(),
        user="a" * 32,
        printer="p" * 64,
        document_name="d" * 200,
        document=base64.b64encode(b"\xff" * handlers.max_document_bytes()),
        origin_host="h" * 255,
    )
    body = encode(largest)
    assert len(body) > handlers.max_document_bytes() * 4 / 3  # the document, base64-encoded
    assert len(body) + HEADROOM <= MAX_MESSAGE_BYTES


def test_the_broker_still_refuses_what_no_legitimate_message_needs():
    # 50 MB, the size a hostile desktop or print server might try, is refused outright.
    assert MAX_MESSAGE_BYTES < 50_000_000
    assert 2 * handlers.max_document_bytes() > MAX_MESSAGE_BYTES
