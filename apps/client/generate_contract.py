"""Writes apps/client/src/platen/client/contract.py, the desktop client's message classes,
from the pydantic models of `platen.events` (which stay the one contract): `make contract`.

The client reads and writes its messages with msgspec, not pydantic (importing and building
pydantic models was a third of its start-up, bench/README.md, client_footprint.py). So that
there is still one source of truth, every class the client uses is written from its
pydantic model here: fields, types, constraints, defaults, versions and upcasters. A type
this script cannot translate faithfully stops it with an error rather than being guessed.
apps/client/tests/test_contract.py regenerates the module in memory and fails when the
checked-in file differs, and proves that both sides read and refuse the same bodies.
"""

from __future__ import annotations

import datetime
import decimal
import inspect
import subprocess
import sys
import textwrap
import types
import typing
import uuid
from pathlib import Path

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from platen.events import base, upcasting
from platen.events.desktop import DESKTOP_KINDS, REPLY_KINDS
from platen.events.money import Money

MODULE = Path(__file__).parent / "src" / "platen" / "client" / "contract.py"

# The contract's named types the client has its own of (`platen.client.wire`): matched by
# their type and validators, since pydantic keeps no name for an annotated type.
NAMED = {"Money": Money, "Login": base.Login}
SIMPLE = {
    str: "str",
    int: "int",
    bool: "bool",
    uuid.UUID: "uuid.UUID",
    datetime.datetime: "datetime.datetime",
    decimal.Decimal: "Decimal",
}
BOUNDS = {
    annotated_types.Gt: "gt",
    annotated_types.Ge: "ge",
    annotated_types.Lt: "lt",
    annotated_types.Le: "le",
    annotated_types.MinLen: "min_length",
    annotated_types.MaxLen: "max_length",
}


class Untranslatable(TypeError):
    pass


def _named(annotation: object, metadata: list) -> str | None:
    for name, named in NAMED.items():
        kind, *meta = typing.get_args(named)
        if annotation is kind and list(metadata) == meta:
            return name
    return None


def _constraints(metadata: list, where: str) -> dict[str, object]:
    meta: dict[str, object] = {}
    for item in metadata:
        if type(item) in BOUNDS:
            meta[BOUNDS[type(item)]] = next(iter(vars(item).values()))
        elif type(item).__name__ == "StringConstraints":
            for key in ("pattern", "min_length", "max_length"):
                if getattr(item, key) is not None:
                    meta[key] = getattr(item, key)
            if item.to_lower or item.to_upper or item.strip_whitespace:
                raise Untranslatable(f"{where}: a string transformation ({item!r})")
        else:
            raise Untranslatable(f"{where}: the constraint {item!r}")
    return meta


def type_of(annotation: object, metadata: list, where: str, parts: list[type]) -> str:
    """The client's spelling of a field's type; collects the nested parts in `parts`."""
    if (name := _named(annotation, metadata)) is not None:
        return name
    if metadata:
        spelt = type_of(annotation, [], where, parts)
        args = ", ".join(f"{k}={v!r}" for k, v in _constraints(metadata, where).items())
        return f"Annotated[{spelt}, msgspec.Meta({args})]"
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return type_of(args[0], list(args[1:]), where, parts)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_of(a, [], where, parts) for a in args)
    if origin is typing.Literal:
        return f"Literal[{', '.join(repr(a) for a in args)}]"
    if origin is list:
        return f"list[{type_of(args[0], [], where, parts)}]"
    if origin is dict:
        return f"dict[{type_of(args[0], [], where, parts)}, {type_of(args[1], [], where, parts)}]"
    if annotation is type(None):
        return "None"
    if annotation in SIMPLE:
        return SIMPLE[annotation]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if annotation not in parts:
            parts.append(annotation)
        return annotation.__name__
    raise Untranslatable(f"{where}: the type {annotation!r}")


def _default(info: FieldInfo, where: str) -> str:
    if info.default_factory is not None:
        if info.default_factory not in (list, dict):
            raise Untranslatable(f"{where}: the default factory {info.default_factory!r}")
        return f" = msgspec.field(default_factory={info.default_factory.__name__})"
    if info.default is PydanticUndefined:
        return ""
    if info.default is not None and not isinstance(info.default, str | int | bool):
        raise Untranslatable(f"{where}: the default {info.default!r}")
    return f" = {info.default!r}"


def _fields(model: type[BaseModel], parts: list[type]) -> list[str]:
    lines = []
    for name, info in model.model_fields.items():
        where = f"{model.__name__}.{name}"
        if info.alias not in (None, name):
            raise Untranslatable(f"{where}: an alias")
        spelt = type_of(info.annotation, list(info.metadata), where, parts)
        lines.append(f"    {name}: {spelt}{_default(info, where)}")
    return lines


def _upcaster(model: type[BaseModel], version: int, fn: object) -> tuple[str, str]:
    """(name, source) of a module-level copy of one upcaster. It may call only the shared
    steps of `platen.events.upcasting` (which import no pydantic)."""
    code = fn.__code__  # type: ignore[attr-defined]
    allowed = {n for n in vars(upcasting) if not n.startswith("_")} | set(dir(__builtins__))
    if not set(code.co_names) <= allowed:
        others = sorted(set(code.co_names) - allowed)
        raise Untranslatable(f"{model.__name__}: its upcaster from v{version} uses {others}")
    source = textwrap.dedent(inspect.getsource(fn))  # type: ignore[arg-type]
    lines = [line for line in source.splitlines() if not line.startswith("@")]
    name = f"_{model.__name__}_v{version}"
    lines[0] = lines[0].replace(f"def {fn.__name__}(", f"def {name}(", 1)  # type: ignore[attr-defined]
    return name, "\n".join(lines)


def _class(model: type[BaseModel], kind: str, parts: list[type]) -> tuple[list[str], list[str]]:
    """(the class's lines, its upcasters' functions)."""
    lines = [f"class {model.__name__}({kind}):"]
    lines.append(f'    """`{model.__module__}.{model.__name__}` (its documentation is there)."""')
    lines.append("")
    functions = []
    if kind != "Part":
        lines.append(f"    message_type: ClassVar[str] = {model.message_type!r}")
        if model.schema_version != 1:
            lines.append(f"    schema_version: ClassVar[int] = {model.schema_version}")
        lines.append(f"    desktop_kind: ClassVar[str] = {model.desktop_kind!r}")
        logins = tuple(
            name
            for name, info in model.model_fields.items()
            if _named(info.annotation, list(info.metadata)) == "Login"
        )
        if logins:
            lines.append(f"    logins: ClassVar[tuple[str, ...]] = {logins!r}")
        steps = []
        for version, fn in sorted(model.upcasters.items()):
            name, source = _upcaster(model, version, fn)
            functions.append(source)
            steps.append(f"{version}: {name}")
        if steps:
            lines.append(f"    upcasters: ClassVar[dict[int, Upcaster]] = {{{', '.join(steps)}}}")
    lines.extend(_fields(model, parts))
    return lines, functions


HEADER = '''"""The desktop's messages, GENERATED from the pydantic models of `platen.events` by
apps/client/generate_contract.py: do not edit; run `make contract` after changing them.

msgspec classes with the same fields, types, constraints, defaults, versions and upcasters
(the base classes, money and login types are in `platen.client.wire`).
"""
from __future__ import annotations

import datetime
import uuid
from decimal import Decimal
from typing import Annotated, ClassVar, Literal

import msgspec

from platen.client.wire import DesktopMessage, DesktopReply, Login, Money, Part, Upcaster
'''


def render() -> str:
    parts: list[type] = []
    messages = []
    functions: list[str] = []
    for kinds, base_class in ((DESKTOP_KINDS, "DesktopMessage"), (REPLY_KINDS, "DesktopReply")):
        for model in kinds:
            lines, fns = _class(model, base_class, parts)
            messages.append("\n".join(lines))
            functions.extend(fns)
    part_classes = []
    done: list[type] = []
    while len(done) < len(parts):  # parts may name parts
        model = parts[len(done)]
        done.append(model)
        part_classes.append("\n".join(_class(model, "Part", parts)[0]))
    used = {n for f in functions for n in vars(upcasting) if n in f and not n.startswith("_")}
    imports = f"from platen.events.upcasting import {', '.join(sorted(used))}\n" if used else ""
    sent = ", ".join(m.__name__ for m in DESKTOP_KINDS)
    replies = ", ".join(m.__name__ for m in REPLY_KINDS)
    tail = (
        "# Each message a desktop is sent, by its type.\n"
        f"DESKTOP_MESSAGES = {{m.message_type: m for m in ({sent})}}\n"
        "# The kind in the routing key of each message a desktop sends.\n"
        f"REPLY_KINDS = {{m: m.desktop_kind for m in ({replies})}}\n"
    )
    blocks = [HEADER + imports, *functions, *part_classes, *messages, tail]
    text = "\n\n\n".join(b.rstrip("\n") for b in blocks) + "\n"
    # In the project's own format, so that `ruff format .` leaves the module as written.
    formatted = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--stdin-filename", str(MODULE), "-"],
        input=text,
        capture_output=True,
        text=True,
        check=True,
    )
    return formatted.stdout


def main() -> None:
    MODULE.write_text(render(), encoding="utf-8")
    print(f"wrote {MODULE}")


if __name__ == "__main__":
    main()
