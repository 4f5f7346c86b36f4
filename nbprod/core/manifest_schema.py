"""The manifest's JSON Schema, and what is wrong with a manifest it refuses, in words.

The schema is published as ``docs/manifest.schema.json`` (JSON Schema draft 2020-12) and ships
inside the package as ``nbprod/core/manifest.schema.json``. It describes format version 1: every
field nbprod writes, with its type, and which fields a reader needs. Readers ignore fields they
do not know, so every object may hold more than the schema lists.

:func:`problem` checks a manifest against it with ``fastjsonschema``, which compiles the schema
to Python once per process (about 0.1 s) and then checks a manifest in under a millisecond. A
manifest it refuses is explained by ``jsonschema``, the reference implementation, which names
the field exactly. Importing ``jsonschema`` costs seconds in a JupyterLab environment (the
format checkers it loads), which every scoring kernel would pay on every load; a refusal can
afford it. The schema uses only keywords both read alike: ``type``, ``const``, ``enum``,
``required``, ``properties``, ``additionalProperties``, ``items``, ``pattern``, ``minimum``,
``maximum``, ``minLength`` and ``$ref`` into ``$defs``.

Each keyword that can fail carries a ``title`` that says what was expected, so a refusal reads
``nbprod.json: model.file ['model.skops'] is not a file path; the manifest is damaged.``
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

SCHEMA_FILE = "manifest.schema.json"
_PYTHON_TYPES = {"string": "str", "array": "list", "object": "dict", "integer": "int",
                 "number": "float", "boolean": "bool", "null": "None"}
_SHOWN = 80


def schema_path() -> Path:
    """The schema file: the package's copy, or in a source checkout the one in ``docs/``."""
    here = Path(__file__).with_name(SCHEMA_FILE)
    return here if here.is_file() else Path(__file__).resolve().parents[2] / "docs" / SCHEMA_FILE


@functools.cache
def schema() -> dict[str, Any]:
    """The manifest's JSON Schema (format version 1)."""
    return json.loads(schema_path().read_text(encoding="utf-8"))


@functools.cache
def _validator() -> Any:
    import fastjsonschema

    return fastjsonschema.compile(schema())


def problem(manifest: Any) -> str | None:
    """What is wrong with ``manifest`` in words (the first problem found), or None when the
    schema accepts it."""
    import fastjsonschema

    try:
        _validator()(manifest)
    except fastjsonschema.JsonSchemaValueException as exc:
        return _explain(manifest) or f"{_manifest()}: {exc.message}; the manifest is damaged."
    return None


def _explain(manifest: Any) -> str | None:
    """The refusal in words, from ``jsonschema``: it knows the exact path of the field (keys
    with dots included, such as ``files.features.py``); imported only for a refusal."""
    from jsonschema import Draft202012Validator

    errors = list(Draft202012Validator(schema()).iter_errors(manifest))
    if not errors:
        return None
    first = min(errors, key=lambda e: len(e.absolute_path))  # the outermost, in field order
    return _words([str(p) for p in first.absolute_path], first.validator, first.instance,
                  first.schema, first.validator_value)


def _words(where: list[str], rule: str, value: Any, expected: dict[str, Any],
           rule_value: Any) -> str:
    manifest = _manifest()
    missing = rule == "required"
    if missing:  # the object at `where` lacks a field: name the field
        name = next(k for k in rule_value if k not in value)
        where = [*where, name]
        expected = expected.get("properties", {}).get(name, {})
    expected = _resolve(expected)
    if where[:1] == ["files"]:
        if len(where) == 1:
            return f"{manifest} lists no files."
        if len(where) == 2 or (len(where) == 3 and missing):
            return f"{manifest}: the entry for {where[1]} lacks its sha256 or size."
    if len(where) == 1 and (missing or rule == "type"):
        return f"{manifest} has no valid {where[0]!r} ({_kind(expected)}); the manifest is damaged."
    field = ".".join(where)
    if missing:
        return f"{manifest}: {field} is missing; the manifest is damaged."
    title = expected.get("title") or _kind(expected)
    return f"{manifest}: {field} {_shown(value)} is not {title}; the manifest is damaged."


def _manifest() -> str:
    from .manifest import MANIFEST

    return MANIFEST


def _resolve(part: dict[str, Any]) -> dict[str, Any]:
    """A sub-schema with its ``$ref`` (into ``$defs``) followed."""
    ref = part.get("$ref")
    if not ref:
        return part
    return schema()["$defs"][ref.rsplit("/", 1)[-1]]


def _kind(part: dict[str, Any]) -> str:
    """The Python type(s) a sub-schema asks for, as today's messages name them: ``dict``."""
    kinds = part.get("type")
    if kinds is None:
        return part.get("title", "a valid value")
    kinds = [kinds] if isinstance(kinds, str) else kinds
    return " or ".join(_PYTHON_TYPES.get(k, k) for k in kinds)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."
