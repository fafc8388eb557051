"""Strict, offline schema validation of rendered Kubernetes objects, in-process.

Built-in kinds are checked against the strict schemas of the cluster's own Kubernetes
version; custom resources against CRD schemas from the locations the user gives, laid out as
`{group}/{kind}_{version}.json` (kubeconform's convention). A kind with no schema is an
error, never a skip. Each validator is compiled once and reused: a compiled check
(`compiled.py`) answers whether an object is valid, and jsonschema is asked for the messages
only when it is not.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

from . import schemas
from .compiled import Check, Compiler, Unsupported

_CORE_TOP = ("apiVersion", "kind", "metadata")
# What compiling a schema part can raise: the kind is then checked by jsonschema alone.
_NOT_COMPILED = (Unsupported, KeyError, TypeError, re.error)


@dataclass(frozen=True)
class SchemaError:
    """One object's schema violation: the field path inside the object and the message."""

    field: str
    message: str


@dataclass
class SchemaStore:
    """Validators by (apiVersion, kind) for one Kubernetes version and some CRD locations."""

    kubernetes_minor: str
    crd_locations: list[Path] = field(default_factory=list)
    _schemas: dict[tuple[str, str], dict[str, Any] | None] = field(default_factory=dict)
    _validators: dict[tuple[str, str], Any] = field(default_factory=dict)
    _fast: dict[tuple[str, str], Check | None] = field(default_factory=dict)

    @cached_property
    def _definitions(self) -> dict[str, Any]:
        definitions: dict[str, Any] = json.loads(
            (schemas.strict_dir(self.kubernetes_minor) / "_definitions.json").read_text()
        )
        return definitions

    @cached_property
    def _registry(self) -> Any:
        from referencing import Registry
        from referencing.jsonschema import DRAFT202012

        return Registry().with_resource(schemas.DEFINITIONS_URI, DRAFT202012.create_resource(self._definitions))

    def schema(self, api_version: str, kind: str) -> dict[str, Any] | None:
        """The kind's schema, or None when no schema is known for it."""
        key = (api_version, kind)
        if key not in self._schemas:
            self._schemas[key] = self._builtin(api_version, kind) or self._crd(api_version, kind)
        return self._schemas[key]

    def fast(self, api_version: str, kind: str) -> Check | None:
        """The compiled check of the kind, or None (no schema, or a keyword not compiled).

        Parts of a schema are compiled when an object first reaches them, so the check can
        still raise `Unsupported` (or fail on a bad `$ref`); `check` then falls back.
        """
        key = (api_version, kind)
        if key not in self._fast:
            schema = self.schema(api_version, kind)
            self._fast[key] = self._compile(schema, f"urn:imageflow-gen:{api_version}/{kind}") if schema else None
        return self._fast[key]

    def validator(self, api_version: str, kind: str) -> Any | None:
        """The jsonschema validator of the kind, or None when no schema is known for it.

        jsonschema is imported here, on first need: a valid output never needs it.
        """
        key = (api_version, kind)
        if key not in self._validators:
            import jsonschema

            schema = self.schema(api_version, kind)
            self._validators[key] = jsonschema.Draft202012Validator(schema, registry=self._registry) if schema else None
        return self._validators[key]

    @cached_property
    def _documents(self) -> dict[str, Any]:
        return {schemas.DEFINITIONS_URI: self._definitions}

    @cached_property
    def _compiler(self) -> Compiler:
        """One compiler for every kind: a definition every kind refers to is compiled once."""

        def resolve(base: str, ref: str) -> tuple[str, Mapping[str, Any]]:
            uri, _, pointer = urljoin(base, ref).partition("#")
            target: Any = self._documents[uri]
            for part in pointer.split("/")[1:]:
                target = target[part.replace("~1", "/").replace("~0", "~")]
            return uri, target

        return Compiler(resolve)

    def _compile(self, schema: dict[str, Any], fallback_uri: str) -> Check | None:
        root = schema.get("$id", fallback_uri)
        self._documents[root] = schema
        try:
            return self._compiler.compile(schema, root)
        except _NOT_COMPILED:
            return None

    def _builtin(self, api_version: str, kind: str) -> dict[str, Any] | None:
        path = schemas.kind_file(self.kubernetes_minor, api_version, kind)
        if not path.is_file():
            return None
        schema = json.loads(path.read_text(encoding="utf-8"))
        # The kind files only list what the kind is; a wrong apiVersion/kind pair must not pass.
        return schema if kind in (schema.get("properties", {}).get("kind", {}).get("enum") or [kind]) else None

    def _crd(self, api_version: str, kind: str) -> dict[str, Any] | None:
        group, _, version = api_version.rpartition("/")
        if not group:
            return None
        for location in self.crd_locations:
            path = location / group / f"{kind.lower()}_{version}.json"
            if path.is_file():
                return _strict_crd(json.loads(path.read_text(encoding="utf-8")), api_version, kind)
        return None

    def check(self, obj: Any) -> list[SchemaError]:
        """Every schema violation of `obj`, in a stable order."""
        if (
            not isinstance(obj, dict)
            or not isinstance(obj.get("apiVersion"), str)
            or not isinstance(obj.get("kind"), str)
        ):
            return [SchemaError("", "not a Kubernetes object: apiVersion and kind must be strings")]
        fast = self.fast(obj["apiVersion"], obj["kind"])
        try:
            if fast is not None and fast(obj):
                return []
        except _NOT_COMPILED:
            self._fast[(obj["apiVersion"], obj["kind"])] = None
        validator = self.validator(obj["apiVersion"], obj["kind"])
        if validator is None:
            return [
                SchemaError(
                    "",
                    f"no schema for {obj['kind']} in {obj['apiVersion']} (Kubernetes "
                    f"{self.kubernetes_minor}, CRD locations: "
                    f"{', '.join(map(str, self.crd_locations)) or 'none'})",
                )
            ]
        errors = [SchemaError(_field(e.absolute_path), _message(e)) for e in validator.iter_errors(obj)]
        return sorted(set(errors), key=lambda e: (e.field, e.message))


def _strict_crd(schema: dict[str, Any], api_version: str, kind: str) -> dict[str, Any]:
    """A CRD schema closed at the top: apiVersion and kind fixed, metadata as ObjectMeta."""
    properties = dict(schema.get("properties", {}))
    properties.update(
        {
            "apiVersion": {"type": "string", "enum": [api_version]},
            "kind": {"type": "string", "enum": [kind]},
            "metadata": {"$ref": f"{schemas.DEFINITIONS_URI}#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
        }
    )
    return {
        **schema,
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": properties,
        "required": sorted(set(schema.get("required", [])) | set(_CORE_TOP)),
        "additionalProperties": False,
    }


def _field(path: Any) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _message(error: Any) -> str:
    """A jsonschema.ValidationError as one line."""
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        return f"unknown field{'s' if len(extra) > 1 else ''} {', '.join(repr(e) for e in extra)}"
    if error.validator in ("type", "oneOf", "anyOf") and error.context:
        return f"{error.instance!r} is not valid here ({error.context[0].message})"
    return str(error.message)
