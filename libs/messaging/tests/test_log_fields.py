"""Which id a log line about a message carries: pure logic, no broker."""

import uuid
from datetime import UTC, datetime
from decimal import Decimal

from platen.events.accounts import BalanceChanged
from platen.events.jobs import JobCaptured
from platen.events.system import ErrorReply
from platen.messaging.logs import correlation_fields

JOB = uuid.uuid4()


def captured() -> JobCaptured:
    return JobCaptured(
        job_id=JOB,
        user="alice",
        printer="lab-1",
        document_name="a.pdf",
        pages=1,
        copies=1,
        size_bytes=10,
        captured_at=datetime.now(UTC),
    )


def test_the_body_names_the_job_even_without_a_correlation_id():
    assert correlation_fields(None, "job.captured", captured()) == {"job_id": str(JOB)}


def test_the_body_wins_over_a_correlation_id_that_says_otherwise():
    other = str(uuid.uuid4())
    assert correlation_fields(other, "job.captured", captured()) == {"job_id": str(JOB)}


def test_a_balance_event_is_bound_to_its_account_not_a_job():
    event = BalanceChanged(
        account="personal:alice",
        owner="alice",
        balance=Decimal("1.00"),
        available=Decimal("1.00"),
    )
    fields = correlation_fields("personal:alice", event.message_type, event)
    assert fields == {"account_id": "personal:alice"}


def test_a_reply_names_the_request_it_answers():
    request = str(uuid.uuid4())
    fields = correlation_fields(request, "error", ErrorReply(error="no"))
    assert fields == {"request_id": request}
    assert correlation_fields(request, "capture.jobs.list.reply") == {"request_id": request}


def test_an_undecoded_message_uses_its_correlation_id_when_it_is_a_job_id():
    assert correlation_fields(str(JOB), "job.captured") == {"job_id": str(JOB)}
    assert correlation_fields(None, "job.captured") == {}


def test_the_management_apis_http_client_does_not_log_each_request():
    """httpx would write an unstructured line per request at INFO (ten a user while
    identities are reconciled); a service's logs stay structured and about its work."""
    import logging

    from platen.messaging.logs import quiet_http_clients

    httpx_log = logging.getLogger("httpx")
    before = httpx_log.level
    try:
        httpx_log.setLevel(logging.DEBUG)  # as an INFO root would let it log
        quiet_http_clients()
        assert not httpx_log.isEnabledFor(logging.INFO)
        assert httpx_log.isEnabledFor(logging.WARNING)
    finally:
        httpx_log.setLevel(before)
