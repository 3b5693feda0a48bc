"""Which event loop a service runs on (`PLATEN_EVENT_LOOP`)."""

from __future__ import annotations

import asyncio

import pytest
import uvloop

from platen.messaging.service import event_loop_factory


def test_uvloop_unless_told_otherwise(monkeypatch):
    monkeypatch.delenv("PLATEN_EVENT_LOOP", raising=False)
    assert event_loop_factory() is uvloop.new_event_loop
    monkeypatch.setenv("PLATEN_EVENT_LOOP", "asyncio")
    assert event_loop_factory() is asyncio.new_event_loop


def test_an_unknown_loop_stops_the_service_with_a_clear_message(monkeypatch):
    monkeypatch.setenv("PLATEN_EVENT_LOOP", "trio")
    with pytest.raises(SystemExit, match="PLATEN_EVENT_LOOP must be uvloop or asyncio, not 'trio'"):
        event_loop_factory()
