"""Offline Kubernetes JSON schemas, from the PyPI package kubernetes-validate.

The package ships strict schemas (unknown fields are errors) for Kubernetes 1.25 to 1.37,
one file per kind named like kubeconform expects (`deployment-apps-v1.json`), whose `$ref`s
point at `https://kubernetes.io/api/_definitions.json`. In-process validation registers that
file under its URI; `export` writes a kubeconform schema folder with the `$ref`s rewritten to
the local `_definitions.json`, so kubeconform never reaches for the network.
"""

from __future__ import annotations

import json
from functools import cache
import importlib.util
from pathlib import Path

DEFINITIONS_URI = "https://kubernetes.io/api/_definitions.json"
_PACKAGE_DIR = "kubernetes-json-schema"


@cache
def _root() -> Path:
    # Found without importing the package: its __init__ imports jsonschema, which a valid
    # output never needs (see kubernetes.SchemaStore.validator).
    spec = importlib.util.find_spec("kubernetes_validate")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the kubernetes-validate package is not installed")
    return Path(list(spec.submodule_search_locations)[0]) / _PACKAGE_DIR


@cache
def versions() -> list[str]:
    """Kubernetes minor versions with schemas, e.g. ['1.25', ..., '1.37']."""
    found = []
    for path in _root().iterdir():
        name = path.name
        if name.startswith("v") and name.endswith(".0-local-strict"):
            found.append(name[1:].removesuffix(".0-local-strict"))
    return sorted(found, key=lambda v: tuple(int(p) for p in v.split(".")))


def strict_dir(minor: str) -> Path:
    """The strict schema folder of Kubernetes `minor` (e.g. '1.28')."""
    path = _root() / f"v{minor}.0-local-strict"
    if not path.is_dir():
        raise FileNotFoundError(f"no schemas for Kubernetes {minor}; available: {', '.join(versions())}")
    return path


def kind_file(minor: str, api_version: str, kind: str) -> Path:
    """Schema file of `kind` in `api_version`: deployment-apps-v1.json, service-v1.json."""
    group, _, version = api_version.rpartition("/")
    suffix = f"-{group.split('.')[0]}-{version}" if group else f"-{version}"
    return strict_dir(minor) / f"{kind.lower()}{suffix}.json"


def export(dest: Path, minors: list[str] | None = None) -> None:
    """Write strict schema folders (all, or `minors`) in kubeconform's layout: v1.28.0-standalone-strict/."""
    for minor in minors or versions():
        target = dest / f"v{minor}.0-standalone-strict"
        target.mkdir(parents=True, exist_ok=True)
        for source in strict_dir(minor).glob("*.json"):
            text = source.read_text(encoding="utf-8").replace('"/api/_definitions.json#', '"_definitions.json#')
            schema = json.loads(text)
            schema.pop("$id", None)
            (target / source.name).write_text(json.dumps(schema, separators=(",", ":")), encoding="utf-8")
