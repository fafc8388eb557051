"""JSON schemas generated from the model: the merged topology, and a profile file."""

from __future__ import annotations

import copy
import json
from typing import Any

from .model import Topology

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
TOPOLOGY_FILE = "topology.schema.json"
PROFILE_FILE = "profile.schema.json"


def topology_schema() -> dict[str, Any]:
    """The schema of a complete topology (a profile merged over its `extends` chain)."""
    schema = Topology.model_json_schema()
    return {"$schema": SCHEMA_DIALECT, "$id": TOPOLOGY_FILE, **schema}


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
