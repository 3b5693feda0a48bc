"""The checked-in AsyncAPI document (docs/asyncapi.yaml) is the one the code makes.

No broker and no database: the document is made in memory from the services' specs.
"""

from __future__ import annotations

import difflib
import importlib.util
from pathlib import Path

import pytest
import yaml

import platen.events  # noqa: F401  # registers every message of the contract
from platen.events.base import HEADER_VERSION
from platen.events.registry import known_types

GENERATOR = Path(__file__).resolve().parents[1] / "docs" / "asyncapi.py"


@pytest.fixture(scope="module")
def generator():
    # docs/ is not a package: load the generator from its file, as `make docs` runs it.
    spec = importlib.util.spec_from_file_location("platen_docs_asyncapi", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def rendered(generator) -> str:
    # Made once for both tests (about 1.5 CPU-seconds a time): neither changes it.
    return generator.render()


def test_the_checked_in_asyncapi_document_matches_the_code(generator, rendered):
    made = rendered
    checked_in = generator.DOCUMENT.read_text(encoding="utf-8")
    if made != checked_in:
        diff = difflib.unified_diff(
            checked_in.splitlines(keepends=True),
            made.splitlines(keepends=True),
            "docs/asyncapi.yaml (checked in)",
            "docs/asyncapi.yaml (from the code)",
            n=2,
        )
        shown = "".join(list(diff)[:80])
        pytest.fail(
            "docs/asyncapi.yaml differs from what the code makes: run `make docs` and "
            f"commit the result.\n{shown}"
        )


def test_every_message_is_documented_with_its_type_and_schema_version(rendered):
    # libyaml's safe loader when PyYAML has it (its wheels do): the same document, read in
    # a tenth of the time of the pure-Python one.
    document = yaml.load(rendered, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    messages = document["components"]["messages"]
    assert set(messages) == set(known_types())
    for message_type, model in known_types().items():
        message = messages[message_type]
        assert message["bindings"]["amqp"]["messageType"] == message_type
        assert message["headers"]["properties"][HEADER_VERSION]["const"] == model.schema_version
        assert message["payload"] == {"$ref": f"#/components/schemas/{model.__name__}"}
        schema = document["components"]["schemas"][model.__name__]
        assert set(schema.get("properties", {})) == set(model.model_fields)
    # Every message is published somewhere, by someone named.
    sends = [op for op in document["operations"].values() if op["action"] == "send"]
    sent = {op["messages"][0]["$ref"].rsplit("/", 1)[1] for op in sends}
    assert sent == set(known_types())
    assert all(op["summary"].startswith("Sent by ") for op in sends)
