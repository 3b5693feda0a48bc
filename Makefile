# Platen: the two commands are `make run` and `make test`.
.PHONY: run test test-unit test-integration test-e2e lint format install bench docs contract clean

install:
	@deploy/local/install-system-packages.sh
	@deploy/local/install-python.sh

run: install
	.venv/bin/python deploy/local/run.py

# Every test, on parallel workers: each worker has its own broker, database and cupsd, and
# much of a test's time is spent waiting on servers and processes. Six workers keep the
# two cores busy 97 % of the run against 89 % for four (docs/development.md, session 26).
# PLATEN_TEST_WORKERS overrides the count (e.g. 0: one process, no workers). A broker from
# the environment (PLATEN_TEST_AMQP_URL) is shared by every worker, and the broker-restart
# test would cut the others' connections: there the default is one process.
WORKERS ?= $(or $(PLATEN_TEST_WORKERS),$(if $(PLATEN_TEST_AMQP_URL),0,6))

test: install
	.venv/bin/python -m pytest -n $(WORKERS) --dist worksteal

# The tiers (platen.testing.tiers decides each test's tier): unit starts no server.
test-unit: install
	.venv/bin/python -m pytest -m unit -n 2 --dist worksteal

test-integration: install
	.venv/bin/python -m pytest -m integration -n $(WORKERS) --dist worksteal

test-e2e: install
	.venv/bin/python -m pytest -m e2e -n $(WORKERS) --dist worksteal

lint: install
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

format: install
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .

bench: install
	.venv/bin/python bench/run_all.py

# The AsyncAPI document, made from the code; tests/test_asyncapi.py fails when it is stale.
docs: install
	.venv/bin/python docs/asyncapi.py

# The desktop client's message classes, made from the pydantic models;
# apps/client/tests/test_contract.py fails when they are stale.
contract: install
	.venv/bin/python apps/client/generate_contract.py

clean:
	rm -rf run .pytest_cache
