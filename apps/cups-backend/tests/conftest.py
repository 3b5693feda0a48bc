"""Fixtures for the backend's tests: the two shims cupsd may start per job."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from platen.cups_backend import build_shim, shim


@pytest.fixture(scope="session")
def compiled_shim(tmp_path_factory) -> Path:
    """`shim.c`, compiled as docs/cups.md builds it."""
    return build_shim.build(tmp_path_factory.mktemp("shim") / "platen")


@pytest.fixture(params=["compiled", "python"])
def shim_command(request, compiled_shim) -> list[str]:
    """How cupsd's wrapper starts each shim: the compiled program, or `python -I -S`."""
    if request.param == "compiled":
        return [str(compiled_shim)]
    return [sys.executable, "-I", "-S", shim.__file__]
