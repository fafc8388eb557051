"""`explain KEY`: a topology key's type, default, allowed values and description.

Read from the shipped JSON schema (`schemas/topology.schema.json`, generated from the model
and kept current by `schema --check`), so it says exactly what validation enforces. Keys are
dotted paths from the top (`storage.minio.buckets`); list items need no index, and a map's
entries are `<name>`. A key may also be given by its tail (`minio.buckets`) when the tail is
unambiguous.
"""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass
from functools import cache
from typing import Any

from .resources import topology_schema

MAP_ENTRY = "<name>"


@dataclass(frozen=True)
class Field:
    path: str
    schema: dict[str, Any]  # the field's own schema, references resolved, `null` alternatives removed
    description: str
    required: bool
    default: Any
    has_default: bool
    nullable: bool


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    """Follow `$ref`s into `$defs`; the referring node's own keys (description) win."""
    while "$ref" in node:
        target = topology_schema()["$defs"][node["$ref"].rsplit("/", 1)[1]]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _without_null(node: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    node = _resolve(node)
    options = node.get("anyOf")
    if options and any(o.get("type") == "null" for o in options):
        rest = [o for o in options if o.get("type") != "null"]
        inner = _resolve(rest[0]) if len(rest) == 1 else {"anyOf": rest}
        outer = {k: v for k, v in node.items() if k != "anyOf"}
        return {**inner, **outer}, True
    return node, False


def _children(node: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    """The fields under a node (through list items and map values) and which are required."""
    node, _ = _without_null(node)
    if node.get("type") == "array" and isinstance(node.get("items"), dict):
        return _children(node["items"])
    if "oneOf" in node:  # a tagged union (a release strategy): every member's fields
        merged: dict[str, Any] = {}
        for member in node["oneOf"]:
            for key, child in _children(member)[0].items():
                known = merged.get(key)
                if known is not None and "enum" in known and "const" in child:  # the tag: every member's
                    merged[key] = {**known, "enum": [*known["enum"], child["const"]]}
                elif known is not None and known.get("const") is not None and "const" in child:
                    merged[key] = {**known, "enum": [known["const"], child["const"]], "const": None}
                else:
                    merged.setdefault(key, child)
        return {k: {n: v for n, v in c.items() if not (n == "const" and v is None)} for k, c in merged.items()}, set()
    if "properties" in node:
        return node["properties"], set(node.get("required", []))
    values = node.get("additionalProperties")
    if isinstance(values, dict) and values:
        return {MAP_ENTRY: values}, set()
    patterns = node.get("patternProperties")
    if patterns:
        value = next(iter(patterns.values()))
        if _resolve(value).get("properties") or _resolve(value).get("items"):
            return {MAP_ENTRY: value}, set()
    return {}, set()


@cache
def fields() -> dict[str, Field]:
    """Every key of the topology, by dotted path, in schema order."""
    found: dict[str, Field] = {}

    def walk(node: dict[str, Any], prefix: str, depth: int) -> None:
        children, required = _children(node)
        for name, child in children.items():
            path = f"{prefix}.{name}" if prefix else name
            schema, nullable = _without_null(child)
            found[path] = Field(
                path,
                schema,
                schema.get("description", ""),
                name in required,
                child.get("default"),
                "default" in child,
                nullable,
            )
            if depth < 12:
                walk(child, path, depth + 1)

    walk(topology_schema(), "", 0)
    return found


def lookup(key: str) -> tuple[Field | None, list[str]]:
    """The field at `key` (or by an unambiguous tail), else None and the candidates."""
    key = key.strip().strip(".")
    table = fields()
    if key in table:
        return table[key], []
    tails = [path for path in table if path.endswith("." + key)]
    if len(tails) == 1:
        return table[tails[0]], []
    if tails:
        return None, tails
    last = key.rsplit(".", 1)[-1]
    return None, [path for path in table if path.rsplit(".", 1)[-1] == last]


def type_text(schema: dict[str, Any]) -> str:
    """'string', 'integer >= 1', 'list of object (Bucket)', 'map of string to integer' ..."""
    schema, _ = _without_null(schema)
    if "anyOf" in schema or "oneOf" in schema:
        return " or ".join(type_text(_resolve(o)) for o in schema.get("anyOf") or schema["oneOf"])
    if "const" in schema:
        return f"constant {json.dumps(schema['const'])}"
    kind = schema.get("type", "any")
    if kind == "array":
        text = f"list of {type_text(schema.get('items', {}))}"
        if schema.get("minItems"):
            text += f", at least {schema['minItems']}"
        return text
    if kind == "object":
        if "properties" in schema:
            return f"object ({schema['title']})" if schema.get("title") else "object"
        values: Any = schema.get("additionalProperties") or next(
            iter((schema.get("patternProperties") or {}).values()), {}
        )
        return f"map of string to {type_text(values) if values else 'any'}"
    bounds = []
    if "minimum" in schema:
        bounds.append(f">= {schema['minimum']}")
    if "exclusiveMinimum" in schema:
        bounds.append(f"> {schema['exclusiveMinimum']}")
    if "maximum" in schema:
        bounds.append(f"<= {schema['maximum']}")
    if "maxLength" in schema:
        bounds.append(f"at most {schema['maxLength']} characters")
    return str(kind) + (f" ({', '.join(bounds)})" if bounds else "")


def allowed_text(schema: dict[str, Any]) -> str:
    """The allowed values: an enum, a pattern, a format; '' when any value of the type goes."""
    schema, _ = _without_null(schema)
    if "enum" in schema:
        return " | ".join(json.dumps(v) if not isinstance(v, str) else v for v in schema["enum"])
    if schema.get("type") == "array":
        return allowed_text(schema.get("items", {}))
    parts = []
    if "pattern" in schema:
        pattern = schema["pattern"]
        parts.append(f"matching {pattern}" if pattern.startswith("^") else f"matching ^{pattern}$")
    if "format" in schema:
        parts.append(f"format {schema['format']}")
    return ", ".join(parts)


def merge_text(schema: dict[str, Any]) -> str:
    """How a child profile's value of this key meets its parent's (the `extends` merge rules)."""
    schema, _ = _without_null(schema)
    if schema.get("type") == "array":
        items = _resolve(schema.get("items", {}))
        if "name" in items.get("properties", {}):
            return "merged item by item by name; `- {name: X, $remove: true}` removes inherited item X"
        return "replaces the inherited list ([] clears it)"
    if schema.get("type") == "object" or any(k in schema for k in ("properties", "anyOf", "oneOf")):
        return "merged key by key; `$unset: [key, ...]` removes inherited keys"
    return "replaces the inherited value"


def _default_text(field: Field) -> str:
    if field.required:
        return "(required)"
    if field.has_default:
        return json.dumps(field.default, ensure_ascii=False)
    return "(none)"


def explain(field: Field) -> str:
    """The text `imageflow-gen explain` prints for one field."""
    lines = [
        f"KEY:         {field.path}",
        f"TYPE:        {type_text(field.schema)}" + (" or null" if field.nullable else ""),
        f"DEFAULT:     {_default_text(field)}",
    ]
    allowed = allowed_text(field.schema)
    if allowed:
        lines.append(f"ALLOWED:     {allowed}")
    lines.append(f"IN A CHILD:  {merge_text(field.schema)}")
    lines.append("DESCRIPTION:")
    description = field.description or "(no description)"
    lines += textwrap.wrap(description, 88, initial_indent="    ", subsequent_indent="    ")
    children, required = _children(field.schema)
    if children:
        lines += ["", "FIELDS:"]
        for name, child in children.items():
            schema, nullable = _without_null(child)
            mark = " (required)" if name in required else ""
            lines.append(f"  {name:<20} <{type_text(schema)}{' or null' if nullable else ''}>{mark}")
            if schema.get("description"):
                lines += textwrap.wrap(schema["description"], 84, initial_indent="      ", subsequent_indent="      ")
    return "\n".join(lines) + "\n"


def overview() -> str:
    """`explain` without a key: the top-level keys."""
    children, required = _children(topology_schema())
    lines = ["The topology's top-level keys (imageflow-gen explain KEY for any of them):", ""]
    for name, child in children.items():
        schema, _ = _without_null(child)
        lines.append(f"  {name:<14} {schema.get('description', '')}{' (required)' if name in required else ''}")
    return "\n".join(lines) + "\n"
