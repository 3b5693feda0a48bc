"""Writes docs/asyncapi.yaml, the AsyncAPI document of the whole system: `make docs`.

Why this lives here: the document describes all four services at once, each found by its
`platen.services` entry point (`platen.messaging.discovery`), and is written beside it;
the machinery it calls (`platen.contract_docs.contract_map`, `platen.contract_docs.asyncapi`)
stays in libs and takes the specs as arguments. tests/test_asyncapi.py regenerates the
document in memory and fails when it differs from the checked-in file.

`app` is a FastStream app (never run), so FastStream's own CLI works on it too, e.g.
`faststream docs serve asyncapi:app --app-dir docs` (needs `faststream[cli]`).
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

from platen.contract_docs.asyncapi import asyncapi_app
from platen.contract_docs.contract_map import contract_map
from platen.messaging import discovery

DOCUMENT = Path(__file__).with_name("asyncapi.yaml")
SPECS = tuple(discovery.specs().values())  # every installed service (its entry point)

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
