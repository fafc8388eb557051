"""Gates over a rendered tree: every file parses, every object matches its schema strictly.

Pure: problems are returned, never printed. External tools (kubeconform, helm, kubectl,
check-jsonschema) live in `tools`, which the CLI runs where they are installed.
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import Location, Problem
from ..shared import AWS_ACCESS_KEY, PRIVATE_KEY, SOURCE_ANNOTATION
from ..yamlio import YamlParseError, parse_all
from .kubernetes import SchemaStore

# Files that are not YAML documents of data: Helm's Go templates and plain text.
_NOT_YAML = ("/templates/", ".txt", ".tpl", ".md", ".sh", ".conf", ".json", ".lock")


def describe(obj: Any) -> str:
    """'Deployment imageflow-processing/resize' (or 'Namespace imageflow-web')."""
    if not isinstance(obj, dict):
        return "document"
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        meta = {}
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


def source_of(obj: Any) -> str:
    """The profile file and key an object came from, as its annotation records them."""
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    return ((meta or {}).get("annotations") or {}).get(SOURCE_ANNOTATION, "") if isinstance(meta, dict) else ""


def schema_problems(store: SchemaStore, objects: list[tuple[str, Any]]) -> list[Problem]:
    """Every object against its strict schema; a kind with no schema is a problem too.

    Each problem names the output file, the object and the field, and the profile key the
    object comes from.
    """
    problems = []
    for path, obj in objects:
        source = source_of(obj)
        for error in store.check(obj):
            key = describe(obj) + (f" {error.field}" if error.field else "")
            problems.append(Problem(Location(path), key, error.message + (f" (from {source})" if source else "")))
    return problems


# A secret value written out: key material, cloud keys, or a credential-named key with a
# literal value (references such as /run/secrets/..., ${...} and secretKeyRef are fine).
_SECRET_PATTERNS = (
    ("a private key", PRIVATE_KEY),
    ("an AWS access key id", AWS_ACCESS_KEY),
    (
        "a credential with a literal value",
        re.compile(
            r"""(?ix)(password|passwd|secret[_.-]?(access[_.-]?)?key|token|api[_.-]?key)["']?
            [ \t]*[:=][ \t]*["']?(?![$/"'\s{]|file:|null\b|true\b|false\b)(?P<value>[A-Za-z0-9+=_.-]{6,})"""
        ),
    ),
)


def secret_problems(files: dict[str, str], references: frozenset[str] = frozenset()) -> list[Problem]:
    """Any secret value in the output: the output names secrets, it never holds them.

    `references` are names that stand for a secret (keys inside a Secret, such as
    rootPassword); a credential-named key whose value is one of them is a reference.
    Each pattern searches a whole file at once; lines are counted only for a match.
    """
    problems = []
    for path, text in files.items():
        for what, pattern in _SECRET_PATTERNS:
            for match in pattern.finditer(text):
                if match.groupdict().get("value") in references:
                    continue
                line = text.count("\n", 0, match.start()) + 1
                problems.append(
                    Problem(
                        Location(path, line, 1),
                        "",
                        f"looks like {what}; secrets must be referenced (Secret, secret file), never written",
                    )
                )
    return problems
