import sys

# pytest caches each test module with its asserts rewritten (a `-pytest-` .pyc in
# __pycache__) only if the interpreter may write bytecode, and this machine sets
# PYTHONDONTWRITEBYTECODE: every worker of every run rewrote all ~280 test modules again,
# about 6 CPU-seconds a worker before its first test (docs/development.md, "Test time").
# The programs the tests start keep the environment's setting; `make install` compiles
# their bytecode.
sys.dont_write_bytecode = False

pytest_plugins = [
    "platen.testing.fixtures",
    "platen.testing.tiers",
    "platen.testing.timeline",
    "platen.testing.fixture_time",
    "platen.testing.order",
    "platen.testing.cpu_by_test",
]
