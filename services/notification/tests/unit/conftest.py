"""Service-layer fixtures: the notification handlers over in-memory adapters."""

from __future__ import annotations

import pytest

from platen.messaging.fakes import FakeContext
from platen.notification.broker_identities import BrokerIdentities

from .fakes import FakeAdmin, FakeQueues, FakeStore


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
    b.configure(admin, queues.declare, store.session)
    return b
