"""The models' validators are built on first use, or all at once by `load_all`."""

from __future__ import annotations

import json
import subprocess
import sys


def built_after(code: str) -> list[bool]:
    # A fresh interpreter: in this one, other tests have used the models already.
    probe = (
        f"import json; from platen.events import registry; {code};"
        "print(json.dumps([m.__pydantic_complete__ for m in registry.known_types().values()]))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_naming_every_model_builds_none_of_them():
    assert not any(built_after("registry.known_types()"))


def test_load_all_builds_every_model_once_for_a_process_that_forks():
    # The test fork server calls it before forking, so its children inherit them built.
    built = built_after("registry.load_all()")
    assert len(built) > 100 and all(built)
