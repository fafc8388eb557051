"""A schema compiled to Python closures that answer one question: is this instance valid?

jsonschema walks a schema and its `$ref`s again for every instance, which costs about a
millisecond per Kubernetes object. This module turns a schema into nested closures once, with
each `$ref` resolved once, so checking a valid object is a plain walk of the object. It only
says valid or not: when an object is not valid, `SchemaStore` asks jsonschema for the
messages, so every message still comes from jsonschema.

Only the keywords found in Kubernetes and CRD schemas are compiled, with jsonschema's
Draft 2020-12 meaning (formats are annotations, as in jsonschema without a format checker).
A schema with any other keyword raises `Unsupported`, and its kind is checked by jsonschema
alone. `tests/test_compiled.py` compares the two verdicts on mutated objects.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

Check = Callable[[Any], bool]

# Keywords without effect on validity here (annotations and Kubernetes extensions).
_ANNOTATIONS = frozenset(
    {
        "$schema",
        "$id",
        "$comment",
        "description",
        "title",
        "default",
        "example",
        "examples",
        "format",
        "nullable",
        "deprecated",
        "readOnly",
        "writeOnly",
    }
)
_HANDLED = frozenset(
    {
        "type",
        "properties",
        "additionalProperties",
        "items",
        "required",
        "enum",
        "const",
        "$ref",
        "oneOf",
        "anyOf",
        "allOf",
        "not",
        "pattern",
        "minLength",
        "maxLength",
        "minimum",
        "maximum",
        "minItems",
        "maxItems",
        "minProperties",
        "maxProperties",
    }
)


class Unsupported(Exception):
    """The schema uses a keyword this compiler does not implement."""


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_TYPES: dict[str, Check] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "number": _is_number,
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer()),
}


def equal(a: Any, b: Any) -> bool:
    """JSON equality: booleans are not numbers, 1 equals 1.0, containers compare deeply."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, str) or isinstance(b, str):
        return bool(a == b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(equal(a[k], b[k]) for k in a)
    return bool(a == b)


class Compiler:
    """Compiles schemas of one document set; `$ref`s are resolved by `resolve(base, ref)`."""

    def __init__(self, resolve: Callable[[str, str], tuple[str, Mapping[str, Any]]]) -> None:
        self._resolve = resolve
        self._refs: dict[str, Check] = {}

    def compile(self, schema: Any, base: str) -> Check:
        """The check of `schema`, whose relative `$ref`s are resolved against document `base`."""
        if schema is True or schema == {}:
            return lambda v: True
        if schema is False:
            return lambda v: False
        if not isinstance(schema, dict):
            raise Unsupported(f"schema is a {type(schema).__name__}")
        unknown = set(schema) - _HANDLED - _ANNOTATIONS
        unknown = {k for k in unknown if not k.startswith("x-")}
        if unknown:
            raise Unsupported(", ".join(sorted(unknown)))
        found = [self._keyword(schema, key, base) for key in _HANDLED if key in schema]
        checks = [c for c in found if c is not None]
        if not checks:
            return lambda v: True
        if len(checks) == 1:
            return checks[0]
        return lambda v: all(check(v) for check in checks)

    def _ref(self, ref: str, base: str) -> Check:
        uri, target = self._resolve(base, ref)
        key = f"{uri}{ref[ref.index('#') :] if '#' in ref else ''}"
        if key not in self._refs:
            # A placeholder first, so a schema that refers to itself compiles.
            slot: list[Check] = []
            self._refs[key] = lambda v: slot[0](v)
            slot.append(self.compile(target, uri))
            self._refs[key] = slot[0]
        return self._refs[key]

    def _keyword(self, schema: dict[str, Any], key: str, base: str) -> Check | None:  # noqa: C901
        value = schema[key]
        if key == "type":
            names = value if isinstance(value, list) else [value]
            tests = [_TYPES[n] for n in names]
            return tests[0] if len(tests) == 1 else (lambda v: any(t(v) for t in tests))
        if key == "properties":
            # Compiled on first use: an object sets few of the fields its schema lists.
            compiled: dict[str, Check] = {}

            def check_property(name: str, item: Any) -> bool:
                if name not in compiled:
                    compiled[name] = self.compile(value[name], base)
                return compiled[name](item)

            return lambda v: not isinstance(v, dict) or all(check_property(k, x) for k, x in v.items() if k in value)
        if key == "additionalProperties":
            known = frozenset(schema.get("properties", {}))
            if value is False:
                return lambda v: not isinstance(v, dict) or known.issuperset(v)
            extra = self.compile(value, base)
            return lambda v: not isinstance(v, dict) or all(extra(x) for k, x in v.items() if k not in known)
        if key == "items":
            item = self.compile(value, base)
            return lambda v: not isinstance(v, list) or all(item(x) for x in v)
        if key == "required":
            required = tuple(value)
            return lambda v: not isinstance(v, dict) or all(n in v for n in required)
        if key == "enum":
            if all(isinstance(e, str) for e in value):
                strings = frozenset(value)
                return lambda v: isinstance(v, str) and v in strings
            options = list(value)
            return lambda v: any(equal(v, e) for e in options)
        if key == "const":
            return lambda v: equal(v, value)
        if key == "$ref":
            ref = self._ref(value, base)
            return lambda v: ref(v)
        if key in ("oneOf", "anyOf", "allOf"):
            subs = [self.compile(sub, base) for sub in value]
            if key == "anyOf":
                return lambda v: any(s(v) for s in subs)
            if key == "allOf":
                return lambda v: all(s(v) for s in subs)
            return lambda v: sum(1 for s in subs if s(v)) == 1
        if key == "not":
            sub = self.compile(value, base)
            return lambda v: not sub(v)
        if key == "pattern":
            search = re.compile(value).search
            return lambda v: not isinstance(v, str) or search(v) is not None
        if key in ("minLength", "maxLength"):
            return _bound(str, value, key.startswith("min"), len)
        if key in ("minItems", "maxItems"):
            return _bound(list, value, key.startswith("min"), len)
        if key in ("minProperties", "maxProperties"):
            return _bound(dict, value, key.startswith("min"), len)
        if key in ("minimum", "maximum"):
            low = key == "minimum"
            return lambda v: not _is_number(v) or (v >= value if low else v <= value)
        raise Unsupported(key)  # pragma: no cover - _HANDLED and this function agree


def _bound(kind: type, limit: int, low: bool, size: Callable[[Any], int]) -> Check:
    if low:
        return lambda v: not isinstance(v, kind) or size(v) >= limit
    return lambda v: not isinstance(v, kind) or size(v) <= limit
