"""The compiled CUPS shim LocalCups builds once per test process (`compiled_shim`)."""

from __future__ import annotations

import os

from platen.localstack.cups import _remove_own


def test_the_compiled_shims_folder_is_removed_by_the_process_that_made_it_only(tmp_path):
    """The exit handler that removes the shim's folder is inherited by every child forked
    from the test process (the services' fork server); a child's exit must not take the
    program from the cupsd folders its parent still makes."""
    folder = tmp_path / "shim"
    folder.mkdir()
    _remove_own(folder, os.getpid() + 1)  # as in a forked child
    assert folder.exists()
    _remove_own(folder, os.getpid())
    assert not folder.exists()
