"""Gates over a rendered tree: every file parses, every object matches its schema strictly.

Pure: problems are returned, never printed. External tools (kubeconform, helm, kubectl,
check-jsonschema) live in `tools`, which the CLI runs where they are installed.
"""

from __future__ import annotations

from typing import Any

from ..errors import Location, Problem
from ..yamlio import YamlParseError, parse_all
from .kubernetes import SchemaStore

# Files that are not YAML documents of data: Helm's Go templates and plain text.
_NOT_YAML = ("/templates/", ".txt", ".tpl", ".md", ".sh", ".conf", ".json", ".lock")


def describe(obj: Any) -> str:
    """'Deployment imageflow-processing/resize' (or 'Namespace imageflow-web')."""
    if not isinstance(obj, dict):
        return "document"
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    name = f"{meta.get('namespace')}/{meta.get('name')}" if meta.get("namespace") else str(meta.get("name"))
    return f"{obj.get('kind')} {name}"


def parse_problems(files: dict[str, str]) -> list[Problem]:
    """Every YAML file must parse: no syntax errors, no duplicate keys."""
    problems = []
    for path, text in files.items():
        if not path.endswith((".yaml", ".yml")) or any(part in path for part in _NOT_YAML):
            continue
        try:
            parse_all(text)
        except YamlParseError as exc:
            problems.append(Problem(Location(path, exc.line, exc.column), "", f"invalid YAML: {exc}"))
    return problems


def schema_problems(store: SchemaStore, objects: list[tuple[str, Any]]) -> list[Problem]:
    """Every object against its strict schema; a kind with no schema is a problem too."""
    problems = []
    for path, obj in objects:
        for error in store.check(obj):
            key = describe(obj) + (f" {error.field}" if error.field else "")
            problems.append(Problem(Location(path), key, error.message))
    return problems
