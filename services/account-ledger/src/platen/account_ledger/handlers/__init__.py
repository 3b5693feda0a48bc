"""The ledger's message handlers, by subject."""
