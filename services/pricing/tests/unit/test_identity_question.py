"""The question an unverified job's user is asked, first among the job's messages."""

import os
import time
from datetime import UTC, datetime

import pytest

from platen.pricing.domain import question


@pytest.fixture
def paris_time():
    old = os.environ.get("TZ")
    os.environ["TZ"] = "Europe/Paris"
    time.tzset()
    yield
    if old is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = old
    time.tzset()


def test_the_question_names_the_document_the_host_and_the_servers_local_time(paris_time):
    at = datetime(2026, 1, 15, 13, 2, tzinfo=UTC)  # 14:02 in Paris
    assert question("report.pdf", "pc7", at) == "Did you print 'report.pdf' from pc7 at 14:02?"
    assert "an unknown computer" in question("a.pdf", None, at)
