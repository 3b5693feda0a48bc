"""The client's words in the desktop's language (gettext), English when none is known.

The translations are `locale/<lang>.po` files in the package, compiled to the gettext
binary catalogue in memory the first time a text is asked for: nothing to build at install
and nothing written to disk, and the text modes, which rarely need a word, do not pay for
it at start-up. The language comes from the locale (LANGUAGE, LC_ALL, LC_MESSAGES, LANG),
as gettext itself chooses it.
"""

from __future__ import annotations

import os
import struct
from functools import cache
from pathlib import Path

LOCALE_DIR = Path(__file__).with_name("locale")


def languages() -> list[str]:
    """The languages the locale asks for, best first ("de_DE.UTF-8" gives "de_DE", "de")."""
    for var in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        if value := os.environ.get(var):
            wanted = []
            for item in value.split(":"):
                code = item.split(".")[0].split("@")[0]
                if code and code not in ("C", "POSIX"):
                    wanted += [code, code.split("_")[0]]
            return wanted
    return []


def language() -> str | None:
    """The first wanted language the client has a catalogue for (None: English)."""
    return next((lang for lang in languages() if (LOCALE_DIR / f"{lang}.po").exists()), None)


def parse_po(text: str) -> dict[str, str]:
    """msgid -> msgstr of a .po file (singular entries, as the client writes them); an
    untranslated or fuzzy entry is left out, so its English shows."""
    catalog: dict[str, str] = {}
    entry: dict[str, str] = {}
    key = None
    fuzzy = False

    def finish() -> None:
        nonlocal fuzzy
        if "msgid" in entry and entry.get("msgstr") and not fuzzy:
            catalog[entry["msgid"]] = entry["msgstr"]
        entry.clear()
        fuzzy = False

    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            finish()
            key = None
        elif line.startswith("#,") and "fuzzy" in line:
            fuzzy = True
        elif line.startswith("#"):
            continue
        elif line.startswith(("msgid ", "msgstr ")):
            if line.startswith("msgid ") and "msgstr" in entry:
                finish()
            key, _, rest = line.partition(" ")
            entry[key] = _unquote(rest)
        elif line.startswith('"') and key is not None:
            entry[key] += _unquote(line)
    finish()
    return catalog


def _unquote(text: str) -> str:
    body = text.strip()[1:-1]
    out, i = [], 0
    escapes = {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}
    while i < len(body):
        if body[i] == "\\" and i + 1 < len(body):
            out.append(escapes.get(body[i + 1], body[i + 1]))
            i += 2
        else:
            out.append(body[i])
            i += 1
    return "".join(out)


def compile_mo(catalog: dict[str, str]) -> bytes:
    """The GNU gettext binary catalogue (.mo) of `catalog`: the header, the two tables of
    (length, offset) pairs sorted by msgid, then the strings, NUL-terminated."""
    items = sorted((k.encode(), v.encode()) for k, v in catalog.items())
    n = len(items)
    header_size = 7 * 4
    originals_at = header_size
    translations_at = originals_at + 8 * n
    strings_at = translations_at + 8 * n
    originals, translations, blob = [], [], b""
    for key, _value in items:
        originals.append((len(key), strings_at + len(blob)))
        blob += key + b"\0"
    for _key, value in items:
        translations.append((len(value), strings_at + len(blob)))
        blob += value + b"\0"
    out = struct.pack("<7I", 0x950412DE, 0, n, originals_at, translations_at, 0, 0)
    for length, offset in originals + translations:
        out += struct.pack("<2I", length, offset)
    return out + blob


@cache
def translation():
    import gettext
    import io

    lang = language()
    if lang is None:
        return gettext.NullTranslations()
    catalog = parse_po((LOCALE_DIR / f"{lang}.po").read_text(encoding="utf-8"))
    # The header entry ("") says the catalogue's charset: the strings are UTF-8.
    catalog.setdefault("", "Content-Type: text/plain; charset=UTF-8\n")
    return gettext.GNUTranslations(io.BytesIO(compile_mo(catalog)))


def _(text: str) -> str:
    return translation().gettext(text)


def reset() -> None:
    """Choose the language again (the tests change the locale)."""
    translation.cache_clear()


def N_(text: str) -> str:
    """Marks a text to translate where it is written; `_` translates it where shown."""
    return text
