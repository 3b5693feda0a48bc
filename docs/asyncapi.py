"""Writes docs/asyncapi.yaml, the AsyncAPI document of the whole system: `make docs`.

Why this lives here: the document describes all four services at once, so whatever makes
it must import each service's `ServiceSpec`. Libs never import services and no service
imports another, so this composition sits outside both, beside the document it writes;
the machinery it calls (`platen.messaging.contract_map`, `platen.messaging.asyncapi`)
stays in libs and takes the specs as arguments. tests/test_asyncapi.py regenerates the
document in memory and fails when it differs from the checked-in file.

`app` is a FastStream app (never run), so FastStream's own CLI works on it too, e.g.
`faststream docs serve asyncapi:app --app-dir docs` (needs `faststream[cli]`).
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

from platen.account_ledger.main import SPEC as ACCOUNT_LEDGER
from platen.job_capture.main import SPEC as JOB_CAPTURE
from platen.messaging.asyncapi import asyncapi_app
from platen.messaging.contract_map import contract_map
from platen.notification.main import SPEC as NOTIFICATION
from platen.pricing.main import SPEC as PRICING

DOCUMENT = Path(__file__).with_name("asyncapi.yaml")
SPECS = (JOB_CAPTURE, PRICING, ACCOUNT_LEDGER, NOTIFICATION)

app = asyncapi_app(
    contract_map(SPECS),
    title="Platen",
    # The document describes the contract, so it carries the contract's version.
    version=importlib.metadata.version("platen-events"),
)


def render() -> str:
    return app.schema.to_specification().to_yaml()


def main() -> None:
    DOCUMENT.write_text(render(), encoding="utf-8")
    print(f"wrote {DOCUMENT}")


if __name__ == "__main__":
    main()
