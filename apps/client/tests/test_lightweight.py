"""The client is light: no service code, no database driver, in what it depends on or loads."""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import re
import subprocess
import sys

SERVICE_PACKAGES = {
    "platen-job-capture",
    "platen-pricing",
    "platen-account-ledger",
    "platen-notification",
    "platen-messaging",
    "platen-broker-setup",
    "platen-operations",
    "platen-contract-docs",
    "platen-db",
    "platen-testing",
    "platenctl",
}


def requirements(dist: str) -> set[str]:
    found = set()
    for req in importlib.metadata.requires(dist) or []:
        if "extra ==" in req:
            continue
        found.add(re.split(r"[\s<>=!~;\[]", req, maxsplit=1)[0].lower())
    return found


def closure(dist: str) -> set[str]:
    seen: set[str] = set()
    todo = [dist]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        # A platform-only dependency (e.g. for Windows) is not installed here.
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            todo.extend(requirements(name))
    return seen


def test_no_service_code_or_database_driver_among_its_dependencies():
    deps = closure("platen-client")
    assert "platen-events" in deps and "aio-pika" in deps
    assert not deps & SERVICE_PACKAGES
    assert not deps & {"asyncpg", "psycopg", "psycopg2", "sqlalchemy", "faststream"}


def test_running_it_loads_no_service_module():
    code = (
        "import sys; import platen.client.main, platen.client.textviews, platen.client.tkview;"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('asyncpg', 'faststream')"
        " or m.startswith(('platen.messaging', 'platen.db', 'platen.notification',"
        " 'platen.account_ledger', 'platen.pricing', 'platen.job_capture', 'platen.rpc'))];"
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_text_modes_load_no_window_or_tray_code():
    # The tray (ctypes into Xlib and Tk) and Tk itself cost start-up and memory; the
    # console and JSON modes must not pay for them, nor the GUI before its window opens.
    code = (
        "import sys, platen.client.main, platen.client.textviews;"
        "print('tkinter' in sys.modules);"
        "import platen.client.tkview;"
        "print(sorted(m for m in sys.modules if m in ('ctypes', 'platen.client.tktray',"
        " 'platen.client.xembed')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "[]"]


def test_running_it_loads_no_pydantic_model():
    # Importing pydantic and building the desktop's models was a third of the client's
    # start-up (bench/README.md, client_footprint.py): the client reads and writes its
    # messages with the classes generated from them (platen.client.contract, msgspec), and
    # of the events library loads only the modules that hold no model.
    code = (
        "import json, sys;"
        "import platen.client.main, platen.client.textviews, platen.client.tkview;"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('platen.events.')"
        " or m.split('.')[0] in ('pydantic', 'pydantic_core', 'annotated_types'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout)
    assert not [m for m in loaded if not m.startswith("platen.events.")]
    assert "pydantic" not in loaded
    pure = {"discovery", "routing", "logins", "upcasting", "identity_question", "errors"}
    assert {m.removeprefix("platen.events.") for m in loaded} <= pure | {"client_option_rules"}


def test_the_desktops_models_are_built_on_first_use_and_still_validate():
    # Building each model's validator at import (and pydantic's plugin look-up with the
    # first one) was a sixth of what the client's imports cost (bench/README.md,
    # client_footprint.py): a model is built when a message of its type is first decoded
    # or sent, and what the server sends is checked exactly as before.
    code = """
import json, sys
import platen.client.main, platen.client.textviews
from platen.events import desktop, client_options
from platen.events.registry import ContractError, decode

def built():
    return sorted(n for m in (desktop, client_options) for n, c in vars(m).items()
                  if isinstance(c, type) and c.__module__ == m.__name__
                  and getattr(c, "__pydantic_complete__", False))

before, loader = built(), "pydantic.plugin._loader" in sys.modules
ok = decode("desktop.balance", 1, b'{"balance": "1.50", "available": "0.50"}')
try:
    decode("desktop.balance", 1, b'{"balance": "lots", "available": "0.50"}')
    bad = None
except ContractError as exc:
    bad = str(exc)
print(json.dumps([before, loader, str(ok.available), built(), bad]))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    before, loader, available, after, bad = json.loads(out.stdout)
    assert before == [] and loader is False
    assert available == "0.50" and after == ["BalanceNotice"]
    assert bad is not None and bad.startswith("desktop.balance: balance")
