"""JSON schemas generated from the model: the merged topology, and a profile file.

The fields' descriptions are the docstrings written under them in the model's classes. They
are read here, when the schemas are generated, and not when the model is imported: every
other command takes them from the shipped schema (`explain`, the chart's tunables), so a
render does not parse the model's source.
"""

from __future__ import annotations

import ast
import copy
import inspect
import json
import textwrap
from typing import Any

from pydantic import BaseModel

from .model import Topology
from .resources import PROFILE_FILE, TOPOLOGY_FILE

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def topology_schema() -> dict[str, Any]:
    """The schema of a complete topology (a profile merged over its `extends` chain)."""
    schema = Topology.model_json_schema()
    classes = _model_classes(Topology)
    _describe(schema, Topology)
    for name, definition in schema.get("$defs", {}).items():
        if name in classes:
            _describe(definition, classes[name])
    return {"$schema": SCHEMA_DIALECT, "$id": TOPOLOGY_FILE, **schema}


def _model_classes(root: type[BaseModel]) -> dict[str, type[BaseModel]]:
    """Every model class reachable from `root`'s fields, by name (the schema's $defs keys)."""
    found: dict[str, type[BaseModel]] = {}
    pending = [root]
    while pending:
        cls = pending.pop()
        if found.setdefault(cls.__name__, cls) is not cls:
            continue
        for field in cls.model_fields.values():
            pending.extend(t for t in _types_in(field.annotation) if t.__name__ not in found)
    return found


def _types_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [t for arg in getattr(annotation, "__args__", ()) for t in _types_in(arg)]


def _describe(schema: dict[str, Any], cls: type[BaseModel]) -> None:
    """Each property's description: the field's own (Field(description=...)) or else the
    docstring under it, which then replaces one its type carries; keys sorted as pydantic
    sorts them."""
    docs = _attribute_docstrings(cls)
    properties = schema.get("properties", {})
    for name, field in cls.model_fields.items():
        key = field.alias or name
        if field.description is None and name in docs and key in properties:
            properties[key] = dict(sorted({**properties[key], "description": docs[name]}.items()))


def _attribute_docstrings(cls: type) -> dict[str, str]:
    """Field name -> the string literal right under its annotation, for the class and the
    classes it inherits from (the nearest wins)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass is object or not issubclass(klass, BaseModel) or klass is BaseModel:
            continue
        body = ast.parse(textwrap.dedent(inspect.getsource(klass))).body[0]
        assert isinstance(body, ast.ClassDef)
        for statement, following in zip(body.body, body.body[1:], strict=False):
            if (
                isinstance(statement, ast.AnnAssign)
                and isinstance(statement.target, ast.Name)
                and isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)
            ):
                docs[statement.target.id] = inspect.cleandoc(following.value.value)
    return docs


def profile_schema() -> dict[str, Any]:
    """The schema of one profile file: any key may be left to the parent, plus `extends`."""
    schema = copy.deepcopy(topology_schema())
    _drop_required(schema)
    _add_directives(schema)
    schema["$id"] = PROFILE_FILE
    schema["title"] = "Profile"
    schema["description"] = (
        "An imageflow-gen profile: a topology, or part of one merged over the profile named in `extends`."
    )
    schema["properties"] = {
        "extends": {"type": "string", "description": "The parent profile's name (a file in the same directory)."},
        **schema["properties"],
    }
    return schema


def _drop_required(node: Any) -> None:
    if isinstance(node, dict):
        node.pop("required", None)
        for value in node.values():
            _drop_required(value)
    elif isinstance(node, list):
        for value in node:
            _drop_required(value)


def _add_directives(node: Any) -> None:
    """Every object of a profile may carry the merge directives: `$unset` (inherited keys to
    drop) and, on an item of a named list, `$remove`."""
    if isinstance(node, dict):
        if isinstance(node.get("properties"), dict) and node.get("type") == "object":
            extra = {
                "$unset": {
                    "type": "array",
                    "items": {"type": "string"},
                    "minItems": 1,
                    "description": "Inherited keys to drop (only in a profile that extends another).",
                }
            }
            if "name" in node["properties"]:
                extra["$remove"] = {
                    "const": True,
                    "description": "Drop the inherited item of this name (write only `name` beside it).",
                }
            node["properties"] = {**node["properties"], **extra}
        for value in node.values():
            _add_directives(value)
    elif isinstance(node, list):
        for value in node:
            _add_directives(value)


def files() -> dict[str, str]:
    """{file name: JSON text} of both schemas."""
    return {
        name: json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
        for name, schema in ((TOPOLOGY_FILE, topology_schema()), (PROFILE_FILE, profile_schema()))
    }
