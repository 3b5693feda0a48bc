"""job-capture's schema on a real PostgreSQL, for the tests of its handlers and deadlines;
the service's temporary folder for the tests of isolated analysis."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from platen.testing.databases import service_pool

MIGRATIONS = Path(__file__).parents[1] / "src/platen/job_capture/migrations"


@pytest.fixture
async def pool(database_url):
    async with service_pool(database_url, "job-capture", "job_capture", MIGRATIONS) as pool:
        yield pool


@pytest.fixture
def own_tmp(tmp_path, monkeypatch):
    """The service's temporary folder: the analyses' folders are made (and must be
    removed) in it, so what is left in it after a test is what an analysis leaked."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    yield tmp_path
    assert list(tmp_path.iterdir()) == []
