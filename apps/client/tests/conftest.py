import gc
import os
from pathlib import Path

import pytest

# `display` (a private Xvfb) comes from platen.testing.fixtures.
# Screenshots go to $PLATEN_SCREENSHOT_DIR when set (docs/images refreshes the user
# guide's pictures), else to the test's temporary folder.
SHOTS = os.environ.get("PLATEN_SCREENSHOT_DIR")


@pytest.fixture
def shots(tmp_path) -> Path:
    return Path(SHOTS) if SHOTS else tmp_path / "shots"


@pytest.fixture(autouse=True)
def collect_tk_garbage():
    """Free each test's Tk objects here, in the main thread. Left to the cyclic garbage
    collector, a Tk variable may be freed in whatever thread runs at that moment (a later
    test starts services from a thread), and Tcl aborts the process when called from a
    thread other than its own.

    Then everything still alive is frozen (out of the collector's sight): the next test's
    collection looks only at what was made since, not again at every object the worker
    holds (the event contract, every collected test), which took 0.28 s a test in the unit
    tier (2 s at load 20). What a test makes after this is collected as before."""
    yield
    gc.collect()
    gc.freeze()
