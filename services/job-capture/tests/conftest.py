"""job-capture's schema on a real PostgreSQL, for the tests of its handlers and deadlines;
the service's temporary folder for the tests of isolated analysis."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from platen.job_capture import isolation
from platen.testing.databases import service_pool

MIGRATIONS = Path(__file__).parents[1] / "src/platen/job_capture/migrations"


@pytest.fixture
async def pool(database_url):
    async with service_pool(database_url, "job-capture", "job_capture", MIGRATIONS) as pool:
        yield pool


@pytest.fixture
def own_tmp(tmp_path, monkeypatch):
    """The service's temporary folder: the analyses' folders are made (and must be
    removed) in it, within this process's own folder (`isolation.scratch_folder`), which
    stays for its next analyses; so what is left after a test, but that folder, and what
    is in that folder, is what an analysis leaked."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(isolation, "_scratch", None)
    yield tmp_path
    left = list(tmp_path.iterdir())
    own = [p for p in left if p.name.startswith(f"{isolation.SCRATCH_PREFIX}{os.getpid()}-")]
    assert [p for p in left if p not in own] == []
    assert [q for p in own for q in p.iterdir()] == []
