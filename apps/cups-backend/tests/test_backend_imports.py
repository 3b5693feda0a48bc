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


# The wrapper cupsd runs (docs/cups.md): `python -S`, the backend's own folder its path.
def run_as_cupsd_does(code: str) -> str:
    from platen.localstack.cups import backend_root

    out = subprocess.run(
        [sys.executable, "-S", "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={"PYTHONPATH": str(backend_root()), "PATH": "/usr/bin:/bin"},
    )
    return out.stdout


def test_a_job_starts_without_the_standard_modules_that_cost_most_to_import():
    """What each job's Python start imports is what the agent path needs: no
    `dataclasses` (with `inspect`), `pathlib`, `tempfile`, `shutil`, `subprocess` (imported
    while the agent works, see the next test), OpenSSL's `_hashlib`, `typing`, `asyncio`."""
    imported = json.loads(
        run_as_cupsd_does(
            "import json, sys\n"
            "import platen.cups_backend.backend\n"
            "print(json.dumps(sorted(sys.modules)))\n"
        )
    )
    costly = {
        "dataclasses",
        "inspect",
        "pathlib",
        "tempfile",
        "shutil",
        "subprocess",
        "_hashlib",
        "typing",
        "asyncio",
        "site",
    }
    assert sorted(costly & set(imported)) == []
    assert "platen.cups_backend.agent_link" in imported  # the path it does take


def test_what_printing_needs_is_imported_while_the_agent_decides():
    out = run_as_cupsd_does(
        "import sys\n"
        "from platen.cups_backend import backend\n"
        "backend.while_waiting()\n"
        "print('subprocess' in sys.modules, 'platen.cups_backend.printing' in sys.modules)\n"
    )
    assert out.split() == ["True", "True"]


def test_without_site_packages_the_backend_can_still_do_the_job_itself():
    """The fallback (no agent) needs the broker client and the contract, which
    `python -S` leaves out until the backend asks for them."""
    out = run_as_cupsd_does(
        "import sys\n"
        "from platen.cups_backend import backend\n"
        "print('aio_pika' in sys.modules)\n"
        "main = backend.on_its_own()\n"
        "print(main.__name__, 'aio_pika' in sys.modules, 'pydantic' in sys.modules)\n"
    )
    assert out.split() == ["False", "platen.cups_backend.main", "True", "True"]
