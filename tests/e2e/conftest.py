"""Fixtures shared by the end-to-end tests of the desktop client."""

from tests.e2e.clientproc import desktops  # noqa: F401 - a fixture
