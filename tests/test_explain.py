"""`explain` covers every key of the topology schema, with its type, default and description."""

from __future__ import annotations

import json
from typing import Any

import pytest

from conftest import REPO
from imageflow_gen.explain import explain, fields, lookup

SCHEMA = json.loads((REPO / "schemas/topology.schema.json").read_text())


def _keys(node: dict[str, Any], prefix: str = "") -> dict[str, dict[str, Any]]:
    """Every property path of the schema, walked here without the code under test."""
    found: dict[str, dict[str, Any]] = {}
    stack = [node]
    while stack:
        current = stack.pop()
        if "$ref" in current:
            stack.append(SCHEMA["$defs"][current["$ref"].split("/")[-1]])
        for option in current.get("anyOf", []):
            stack.append(option)
        if isinstance(current.get("items"), dict):
            stack.append(current["items"])
        for name, sub in current.get("properties", {}).items():
            path = f"{prefix}.{name}" if prefix else name
            found[path] = sub
            found.update(_keys(sub, path))
        for sub in [current.get("additionalProperties")] + list((current.get("patternProperties") or {}).values()):
            if isinstance(sub, dict) and ("properties" in sub or "$ref" in sub):
                found.update(_keys(sub, f"{prefix}.<name>"))
    return found


KEYS = _keys(SCHEMA)


def test_every_schema_key_is_explained() -> None:
    assert len(KEYS) > 250
    assert set(KEYS) <= set(fields())
    for path, sub in KEYS.items():
        field, _ = lookup(path)
        assert field is not None and field.path == path
        text = explain(field)
        assert text.startswith(f"KEY:         {path}\nTYPE:        ") and "DEFAULT:     " in text
        description = sub.get("description") or SCHEMA["$defs"].get(sub.get("$ref", "/").split("/")[-1], {}).get(
            "description"
        )
        assert description, f"{path} has no description in the model"
        assert " ".join(description.split())[:60] in " ".join(text.split()), path


@pytest.mark.parametrize(
    "key, expected",
    [
        ("minio.credentials", "KEY:         storage.minio.credentials\nTYPE:        object (SecretRef)"),
        ("storage.minio.buckets", "KEY:         storage.minio.buckets\nTYPE:        list of object (Bucket)"),
        ("storage.minio.buckets.access", "ALLOWED:     rw | r | w"),
        ("storage.minio.mode", "DEFAULT:     "),
        ("vms.vpn_address", "TYPE:        string or null\nDEFAULT:     null\nALLOWED:     format ipv4"),
        ("cluster.name", "DEFAULT:     (required)"),
        (
            "processing.services",
            "IN A CHILD:  merged item by item by name; `- {name: X, $remove: true}` removes inherited item X",
        ),
        ("processing.services.availability", "IN A CHILD:  merged key by key; `$unset: [key, ...]` removes"),
        ("storage.minio.volumes.hosts", "IN A CHILD:  replaces the inherited list ([] clears it)"),
        ("cluster.name", "IN A CHILD:  replaces the inherited value"),
    ],
)
def test_explain_texts(key: str, expected: str) -> None:
    field, _ = lookup(key)
    assert field is not None and expected in explain(field)


def test_unknown_and_ambiguous_keys(cli) -> None:
    ambiguous = cli("explain", "name")
    assert ambiguous.code == 2 and "did you mean: vms.name, cluster.name" in ambiguous.stderr
    unknown = cli("explain", "nothing.here")
    assert unknown.code == 2 and "no key 'nothing.here'" in unknown.stderr and unknown.stdout == ""
