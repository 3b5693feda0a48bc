"""The client in the desktop's language: German complete, English otherwise, chosen from
the locale, with the catalogue compiled at import from the .po in the package."""

from __future__ import annotations

import ast
import gettext
import io
import os
import string
import subprocess
import sys
from pathlib import Path

import pytest

from platen.client import i18n

SOURCES = Path(i18n.__file__).parent


def msgids() -> set[str]:
    """Every text the client marks for translation (`_("...")`, `N_("...")`)."""
    found = set()
    for path in SOURCES.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("_", "N_")
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                found.add(node.args[0].value)
    return found


def fields(text: str) -> set[str]:
    return {name for _lit, name, _spec, _conv in string.Formatter().parse(text) if name}


@pytest.fixture
def german(monkeypatch):
    for var in ("LANGUAGE", "LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("LANG", "de_DE.UTF-8")
    i18n.reset()
    yield
    monkeypatch.undo()
    i18n.reset()


def test_german_is_complete_and_keeps_every_placeholder():
    catalog = i18n.parse_po((SOURCES / "locale" / "de.po").read_text(encoding="utf-8"))
    wanted = msgids()
    assert len(wanted) > 60
    assert sorted(wanted - set(catalog)) == []  # a new text needs its translation
    for msgid in wanted:
        # A translation that lost or renamed a {field} would fail at run time.
        assert fields(catalog[msgid]) == fields(msgid), msgid


def test_the_compiled_catalogue_is_what_gettext_reads():
    catalog = {
        "": "Content-Type: text/plain; charset=UTF-8\n",
        "Print": "Drucken",
        "Balance {balance}": "Guthaben {balance}",
        'Say "hi"\n': "„Hallo“\n",
    }
    reader = gettext.GNUTranslations(io.BytesIO(i18n.compile_mo(catalog)))
    for msgid, msgstr in catalog.items():
        if msgid:
            assert reader.gettext(msgid) == msgstr
    assert reader.gettext("not translated") == "not translated"


def test_po_parsing_reads_continued_and_escaped_lines_and_skips_fuzzy_ones():
    po = (
        'msgid ""\nmsgstr "Content-Type: text/plain; charset=UTF-8\\n"\n\n'
        'msgid "Long "\n"text"\nmsgstr "Langer "\n"Text"\n\n'
        '#, fuzzy\nmsgid "Guess"\nmsgstr "Rate"\n\n'
        'msgid "Quote \\"x\\""\nmsgstr "Zitat „x“"\n\n'
        'msgid "Empty"\nmsgstr ""\n'
    )
    catalog = i18n.parse_po(po)
    assert catalog["Long text"] == "Langer Text"
    assert catalog['Quote "x"'] == "Zitat „x“"
    assert "Guess" not in catalog and "Empty" not in catalog


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"LANG": "de_DE.UTF-8"}, "de"),
        ({"LANGUAGE": "de_AT:en", "LANG": "en_US.UTF-8"}, "de"),
        ({"LC_ALL": "de_CH.UTF-8"}, "de"),
        ({"LANG": "fr_FR.UTF-8"}, None),  # no French: English
        ({"LC_ALL": "C", "LANG": "de_DE.UTF-8"}, None),  # C wins, as in gettext
        ({}, None),
    ],
)
def test_the_language_comes_from_the_locale(monkeypatch, env, expected):
    for var in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    assert i18n.language() == expected


def test_texts_in_german_and_in_english(german, monkeypatch):
    from platen.client.formatting import pages

    assert i18n._("Print") == "Drucken"
    assert pages(1) == "1 Seite" and pages(3) == "3 Seiten"
    monkeypatch.setenv("LANG", "en_GB.UTF-8")
    i18n.reset()
    assert i18n._("Print") == "Print" and pages(3) == "3 pages"


def test_starting_reads_no_catalogue():
    """No text is translated at import (class attributes are only marked, `N_`): a text
    mode that shows no window pays nothing for the translations at start-up."""
    code = (
        "import platen.client.main, platen.client.textviews, platen.client.tkdialogs;"
        "from platen.client import i18n; print(i18n.translation.cache_info().currsize)"
    )
    env = {**os.environ, "LANG": "de_DE.UTF-8"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.strip() == "0"
