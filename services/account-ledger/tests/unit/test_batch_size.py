"""The ledger takes its job events in batches of up to 64 (docs/ledger.md, "Charges in
batches"): one hot shared account's charges, with 32 batches in flight, stayed under 1,000
a second in batches of 32 and went above it in batches of 64 (bench/README.md, session 24)."""

from __future__ import annotations

from platen.account_ledger.main import SPEC
from platen.messaging.service import batch_sizes
from platen.messaging.settings import Settings


def test_the_ledger_charges_in_batches_of_up_to_64():
    assert batch_sizes(SPEC, Settings("amqp://", "postgresql://")) == {"account-ledger.events": 64}
