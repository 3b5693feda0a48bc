"""Service-layer fixtures: the notification handlers over in-memory adapters."""

from __future__ import annotations

import pytest

from platen.messaging.fakes import FakeContext
from platen.notification import prompts
from platen.notification.broker_identities import BrokerIdentities
from platen.notification.domain import AnswerRates

from .fakes import FakeAdmin, FakeQueues, FakeStore


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def clock(monkeypatch) -> Clock:
    """Each test starts with full answer buckets (at the defaults) and a clock of its own."""
    rates = AnswerRates(rate=2, burst=30)
    monkeypatch.setattr(prompts, "answer_rates", lambda: rates)
    clock = Clock()
    monkeypatch.setattr(prompts, "CLOCK", clock)
    return clock


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def ctx(store) -> FakeContext:
    return FakeContext(store=store, producer="notification")


@pytest.fixture
def admin() -> FakeAdmin:
    return FakeAdmin()


@pytest.fixture
def queues() -> FakeQueues:
    return FakeQueues()


@pytest.fixture
def broker(admin, queues, store) -> BrokerIdentities:
    """Identities managed through a fake management API; no pause between retries."""
    b = BrokerIdentities(disconnect_retries=(), retry_delays=(0,))
    b.configure(admin, queues.declare, store.session, queues.delete)
    return b
