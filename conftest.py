pytest_plugins = ["platen.testing.fixtures"]
