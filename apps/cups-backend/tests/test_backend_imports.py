"""The backend cupsd starts for every job imports the standard library and its own small
modules only: the broker client, the contract and pydantic are the print agent's, and
the backend's only when it must do a job by itself (the agent not answering)."""

from __future__ import annotations

import json
import subprocess
import sys

FRESH = """
import json, sys
import platen.cups_backend.backend
std = set(sys.stdlib_module_names)
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] not in std)))
"""


def test_the_backend_imports_nothing_beyond_the_standard_library_and_its_own_modules():
    out = subprocess.run(
        [sys.executable, "-c", FRESH], capture_output=True, text=True, timeout=60, check=True
    )
    imported = json.loads(out.stdout)
    others = [
        m
        for m in imported
        if m not in ("__main__", "platen") and not m.startswith("platen.cups_backend")
    ]
    assert others == []
    # Not even the modules that talk to the broker, or the agent's.
    assert "platen.cups_backend.main" not in imported
    assert "platen.cups_backend.agent" not in imported
