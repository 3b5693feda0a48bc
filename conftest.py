pytest_plugins = ["platen.testing.fixtures", "platen.testing.tiers"]
