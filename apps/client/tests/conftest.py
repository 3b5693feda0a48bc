import os
from pathlib import Path

import pytest

from platen.testing.xvfb import xvfb

# Screenshots go here when set (`make docs-images` sets it to docs/images), else to the
# test's temporary folder.
SHOTS = os.environ.get("PLATEN_SCREENSHOT_DIR")


@pytest.fixture(scope="session")
def display():
    with xvfb() as name:
        old = os.environ.get("DISPLAY")
        os.environ["DISPLAY"] = name
        try:
            yield name
        finally:
            if old is None:
                os.environ.pop("DISPLAY", None)
            else:
                os.environ["DISPLAY"] = old


@pytest.fixture
def shots(tmp_path) -> Path:
    return Path(SHOTS) if SHOTS else tmp_path / "shots"
