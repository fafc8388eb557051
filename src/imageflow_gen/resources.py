"""Where the templates, schemas (with the CRD schemas) and profiles shipped with the tool live.

In a source checkout (and an editable install) they are the repository's top-level
`templates/`, `schemas/` and `profiles/`; a wheel carries copies inside the package.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import cache
from pathlib import Path
from typing import Any

_PACKAGE = Path(__file__).resolve().parent


# The schemas generated from the model (schema.py writes them; `schema --check` keeps them current).
TOPOLOGY_FILE = "topology.schema.json"
PROFILE_FILE = "profile.schema.json"


@cache
def data_dir(name: str) -> Path:
    """The directory `name` (templates, schemas or profiles), packaged copy first."""
    for candidate in (_PACKAGE / "_data" / name, _PACKAGE.parent.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"imageflow-gen is installed without its {name}/ directory")


@cache
def topology_schema() -> dict[str, Any]:
    """The shipped schema of a topology: what validation enforces, with every field's description."""
    schema: dict[str, Any] = json.loads((data_dir("schemas") / TOPOLOGY_FILE).read_text(encoding="utf-8"))
    return schema


def field_description(model: str, key: str) -> str | None:
    """The description of the property `key` of the model class named `model`, from the shipped
    schema (the model itself does not read its docstrings at run time)."""
    schema = topology_schema()
    node = schema if schema.get("title") == model else schema.get("$defs", {}).get(model, {})
    description = node.get("properties", {}).get(key, {}).get("description")
    return description if isinstance(description, str) else None


def upstream_crds() -> list[Path]:
    """The projects' own CRD files shipped with the tool (schemas/crds/upstream), which the local
    API server installs."""
    return sorted((data_dir("schemas") / "crds" / "upstream").glob("*.yaml"))


def crd_locations(extra: list[Path] | None = None) -> list[Path]:
    """Where CRD schemas are looked up: the user's folders first (they add or override), then
    the ones shipped with the tool (schemas/crds, produced by tools/crds.py)."""
    return [*(extra or []), data_dir("schemas") / "crds"]


# What decides a render's bytes besides the profile: the package's code, its templates and its
# schemas (the validation gates' verdict is part of a render). The shipped profiles are not:
# `render` never reads them.
FINGERPRINTED = ("templates", "schemas")


@cache
def generator_fingerprint() -> str:
    """sha256 over the tool's own code, templates and schemas, by their place in the package.

    The same in a wheel and in a checkout (files are named as the package names them, not by
    where they lie), so a lock records it and a later render can prove that the generator it
    runs is the one that wrote the output. The dependencies are pinned exactly by the package.
    """
    return fingerprint_of([("imageflow_gen", _PACKAGE, (".py",))] + [(n, data_dir(n), None) for n in FINGERPRINTED])


def fingerprint_of(trees: list[tuple[str, Path, tuple[str, ...] | None]]) -> str:
    """sha256 over (logical name, bytes) of every file in `trees` (name, folder, suffixes or
    None for every file), in sorted order; caches and the package's data copy left out."""
    files: list[tuple[str, str]] = []
    for name, root, suffixes in trees:
        for folder, dirs, names in os.walk(root):
            dirs[:] = [d for d in dirs if d != "__pycache__" and not (folder == str(root) and d == "_data")]
            relative = os.path.relpath(folder, root)
            for file in names:
                if suffixes is None or file.endswith(suffixes):
                    logical = f"{name}/{file}" if relative == "." else f"{name}/{relative}/{file}"
                    files.append((logical, os.path.join(folder, file)))
    digest = hashlib.sha256()
    for logical, path in sorted(files):
        with open(path, "rb") as handle:
            data = handle.read()
        digest.update(f"{logical}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()
