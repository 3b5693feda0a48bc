"""`platen` run with no arguments: the devices CUPS may wrap, as CUPS expects them listed.

Like PyKota's wrapper, it asks every other backend for its devices and offers each one
again behind `platen:/`, so an administrator can pick a wrapped device in CUPS's tools.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

SELF = "platen"


def backend_dir() -> Path:
    return Path(os.environ.get("CUPS_SERVERBIN", "/usr/lib/cups")) / "backend"


def _discover(backend: Path) -> list[str]:
    try:
        out = subprocess.run([str(backend)], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return out.stdout.splitlines()


def wrap(line: str) -> str | None:
    """`direct usb://x "Make" "Info"` -> `direct platen:/usb://x "Make" "Info"`: the same
    device, its URI behind `platen:/` (which is what tells the two apart in CUPS's lists),
    its make and description unchanged; None for a line that names no device."""
    parts = line.split(" ", 2)
    if len(parts) < 3 or ("://" not in parts[1] and ":/" not in parts[1]):
        return None
    device_class, uri, rest = parts
    if uri.startswith(f"{SELF}:"):
        return None
    return f"{device_class} {SELF}:/{uri} {rest}"


def list_devices() -> list[str]:
    # Imported here: the backend imports this module on every job, which lists nothing.
    from concurrent.futures import ThreadPoolExecutor

    lines = [f'network {SELF} "Unknown" "Platen print charging (wraps another backend)"']
    backends = [
        p
        for p in sorted(backend_dir().iterdir())
        if p.name != SELF and os.access(p, os.X_OK) and p.is_file()
    ]
    with ThreadPoolExecutor(max_workers=8) as pool:
        for found in pool.map(_discover, backends):
            lines += [w for line in found if (w := wrap(line))]
    return lines
