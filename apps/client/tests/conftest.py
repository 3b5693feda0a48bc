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
