"""A service's own settings are read when used, not at import (the tests' fork server
imports the services' modules once for all the services it starts), and once at start as
well: a value that does not parse stops the service there, with its error, instead of
failing every message that needs it."""

import sys

import pytest

from platen.messaging import discovery, service

READ_AT_START = {
    "job-capture": [
        "PLATEN_MAX_DOCUMENT_BYTES",
        "PLATEN_JOB_DEADLINE_SECONDS",
        "PLATEN_EXPIRY_INTERVAL_SECONDS",
        "PLATEN_RELEASE_TIMEOUT_SECONDS",
    ],
    "account-ledger": [
        "PLATEN_LOW_BALANCE_THRESHOLD",
        "PLATEN_INPUT_DEADLINE_SECONDS",
        "PLATEN_MAX_HOLD_AGE_SECONDS",
        "PLATEN_QUOTA_INTERVAL_SECONDS",
    ],
    "notification": [
        "PLATEN_ANSWER_RATE",
        "PLATEN_ANSWER_BURST",
        "PLATEN_HELLO_RATE",
        "PLATEN_HELLO_BURST",
    ],
}


def never_built(*_args, **_kw):
    raise AssertionError("the service went on to start with a setting that does not parse")


@pytest.mark.parametrize(
    ("name", "variable"),
    [(name, variable) for name, variables in READ_AT_START.items() for variable in variables],
)
def test_a_setting_that_does_not_parse_stops_its_service_at_start(name, variable, monkeypatch):
    spec = discovery.specs()[name]
    for read in spec.settings:
        if hasattr(read, "cache_clear"):  # the rates, made once per process
            read.cache_clear()
    monkeypatch.setenv(variable, "lots")
    monkeypatch.setattr(sys, "argv", [name])
    monkeypatch.setattr(service, "build_app", never_built)
    with pytest.raises((ValueError, ArithmeticError)):  # Decimal's is an ArithmeticError
        service.run_service(spec)
