# Platen: the two commands are `make run` and `make test`.
.PHONY: run test lint format install bench docs clean

install:
	@deploy/local/install-system-packages.sh
	@deploy/local/install-python.sh

run: install
	.venv/bin/python deploy/local/run.py

test: install
	.venv/bin/python -m pytest

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

clean:
	rm -rf run .pytest_cache
