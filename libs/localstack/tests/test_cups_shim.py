"""The compiled CUPS shim LocalCups installs (`compiled_shim`)."""

from __future__ import annotations

import os

from platen.localstack.cups import compiled_shim


def test_the_compiled_shim_is_built_once_for_its_sources():
    """Kept under a hash of what goes into it: every cupsd of a run (one a test) and every
    run after runs the same program, built again only when its source changes."""
    first = compiled_shim()
    built = first.stat().st_mtime_ns
    assert compiled_shim() == first
    assert first.stat().st_mtime_ns == built  # not built again
    assert os.access(first, os.X_OK) and first.stat().st_mode & 0o777 == 0o700
