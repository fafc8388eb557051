#!/usr/bin/env python3
"""Produce schemas/crds/: the custom resource definitions the output uses, and strict JSON
schemas derived from them for the offline gate.

Each project's own CRD files come from its Go module, fetched with `go mod download` (the
module proxy, checked against the Go checksum database) at the version pinned below and held
to the pinned go.sum `h1:` hash. Nothing else is fetched.

    python tools/crds.py                 rewrite schemas/crds/ (README.md there is kept)
    python tools/crds.py --out DIR       write the same tree into DIR (the tests compare)

What it writes, next to the hand-written README.md:
    upstream/<crd name>.yaml             each CRD exactly as the project ships it
    <group>/<kind>_<version>.json        the JSON schema of each served version (kubeconform's layout)
    licenses/<project>.txt               each module's LICENSE file
    sources.json                         module, version, h1: sum, licence, file and sha256 of everything
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "schemas" / "crds"


@dataclass(frozen=True)
class Source:
    """A Go module that ships CRD files, and which of its CRDs the output may use."""

    project: str
    module: str
    version: str
    sum: str  # the go.sum h1: hash of the module zip
    license: str  # SPDX identifier of the module's LICENSE file
    files: tuple[str, ...]  # CRD files inside the module
    crds: tuple[str, ...]  # metadata.name of the CRDs to keep


SOURCES = (
    Source(
        "istio",
        "istio.io/api",
        "v1.24.2",
        "h1:jYjcN6Iq0RPtQj/3KMFsybxmfqmjGN/dxhL7FGJEdIM=",
        "Apache-2.0",
        ("kubernetes/customresourcedefinitions.gen.yaml",),
        (
            "gateways.networking.istio.io",
            "virtualservices.networking.istio.io",
            "destinationrules.networking.istio.io",
            "authorizationpolicies.security.istio.io",
            "peerauthentications.security.istio.io",
        ),
    ),
    Source(
        "argo-cd",
        "github.com/argoproj/argo-cd/v2",
        "v2.13.3",
        "h1:pP0MdX9hUnOd5MDJ6VkspLFctoVCdDtlAv9EQOA94TI=",
        "Apache-2.0",
        ("manifests/crds/application-crd.yaml", "manifests/crds/appproject-crd.yaml"),
        ("applications.argoproj.io", "appprojects.argoproj.io"),
    ),
    Source(
        "external-secrets",
        "github.com/external-secrets/external-secrets",
        "v0.16.2",
        "h1:iNY+gIgSyL5higXTfnz+hdPCaiB/43UiHLqE7HBpj68=",
        "Apache-2.0",
        (
            "config/crds/bases/external-secrets.io_externalsecrets.yaml",
            "config/crds/bases/external-secrets.io_secretstores.yaml",
            "config/crds/bases/external-secrets.io_clustersecretstores.yaml",
        ),
        (
            "externalsecrets.external-secrets.io",
            "secretstores.external-secrets.io",
            "clustersecretstores.external-secrets.io",
        ),
    ),
    Source(
        "sealed-secrets",
        "github.com/bitnami-labs/sealed-secrets",
        "v0.27.1",
        "h1:oSq/rCGYz0pk7RP4RacIorG/VCWA6c4D8wIEpRkZAUg=",
        "Apache-2.0",
        ("helm/sealed-secrets/crds/bitnami.com_sealedsecrets.yaml",),
        ("sealedsecrets.bitnami.com",),
    ),
)

# Keywords whose values are schemas (or maps/lists of schemas); every other keyword's value is
# data (enum, required, default, example, ...) and is copied untouched.
_SCHEMA_VALUED = {"items", "additionalProperties", "not"}
_SCHEMA_LISTS = {"allOf", "anyOf", "oneOf"}
_SCHEMA_MAPS = {"properties"}
# Kept out of the derived schemas: prose (the real CRD files keep it) and the Kubernetes
# extensions, which JSON Schema does not know (the two that change validity are translated).
_DROPPED = {"description"}


def download(source: Any, workdir: Path, tool: str = "crds") -> Path:
    """The module's extracted directory (`source`: its module, version and sum), after checking
    its h1: sum against the pin; `tool` names the script in its errors."""
    env = {**os.environ, "GOFLAGS": "-mod=mod"}
    proc = subprocess.run(
        ["go", "mod", "download", "-json", f"{source.module}@{source.version}"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    info = json.loads(proc.stdout or "{}")
    if proc.returncode != 0 or "Error" in info:
        sys.exit(
            f"{tool}: go mod download {source.module}@{source.version} failed: "
            f"{info.get('Error') or proc.stderr.strip()}"
        )
    if info.get("Sum") != source.sum:
        sys.exit(f"{tool}: {source.module}@{source.version} has sum {info.get('Sum')}, expected {source.sum}")
    return Path(info["Dir"])


def documents(text: str) -> list[str]:
    """The YAML documents of a file, each as its own text (a line `---` separates them)."""
    parts, current = [], []
    for line in text.splitlines(keepends=True):
        if line.rstrip("\n") == "---":
            parts.append("".join(current))
            current = []
        else:
            current.append(line)
    parts.append("".join(current))
    return [part for part in parts if yaml.safe_load(part) is not None]


def strict(node: Any) -> Any:
    """A CRD's openAPIV3Schema as JSON Schema: unknown fields rejected wherever the CRD lists
    the fields (unless it preserves unknown fields), `nullable` and int-or-string spelled out."""
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED or key.startswith("x-kubernetes-") or key == "nullable":
            continue
        if key in _SCHEMA_MAPS:
            out[key] = {name: strict(sub) for name, sub in value.items()}
        elif key in _SCHEMA_LISTS:
            out[key] = [strict(sub) for sub in value]
        elif key in _SCHEMA_VALUED:
            out[key] = strict(value)
        else:
            out[key] = value
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if node.get("nullable"):
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        if "enum" in out and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not node.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


# Every object has these at its top, whether the CRD's schema lists them or not (Istio's do
# not): the derived schema lists them, so that its top can be closed too.
_OBJECT_TOP = {"apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"}}


def kind_schema(openapi: dict[str, Any]) -> dict[str, Any]:
    """The JSON schema of one served version: strict, closed at the top as well."""
    schema = strict(openapi)
    schema["properties"] = {**_OBJECT_TOP, **schema.get("properties", {})}
    schema["additionalProperties"] = False
    return schema


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def put(out: Path, relative: str, text: str) -> str:
    path = out / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8"))
    return sha256(text.encode("utf-8"))


def crd_entries(source: Source, module_dir: Path, out: Path) -> list[dict[str, Any]]:
    """Write the kept CRDs of one module and their schemas; their entries for sources.json."""
    entries = []
    for file in source.files:
        raw = (module_dir / file).read_bytes()
        for text in documents(raw.decode("utf-8")):
            crd = yaml.safe_load(text)
            name = crd["metadata"]["name"]
            if name not in source.crds:
                continue
            spec = crd["spec"]
            schemas = {}
            for version in spec["versions"]:
                if not version.get("served", False):
                    continue
                relative = f"{spec['group']}/{spec['names']['kind'].lower()}_{version['name']}.json"
                body = json.dumps(kind_schema(version["schema"]["openAPIV3Schema"]), indent=1, sort_keys=True) + "\n"
                schemas[relative] = put(out, relative, body)
            entries.append(
                {
                    "name": name,
                    "kind": spec["names"]["kind"],
                    "source": file,
                    "source_sha256": sha256(raw),
                    "file": f"upstream/{name}.yaml",
                    "sha256": put(out, f"upstream/{name}.yaml", text),
                    "schemas": dict(sorted(schemas.items())),
                }
            )
    missing = set(source.crds) - {e["name"] for e in entries}
    if missing:
        sys.exit(f"crds: {source.module}@{source.version} has no CRD {', '.join(sorted(missing))}")
    return sorted(entries, key=lambda e: e["name"])


def produce(out: Path) -> None:
    """Write every generated file of schemas/crds/ into `out`."""
    modules = []
    with tempfile.TemporaryDirectory(prefix="imageflow-crds-") as work:
        for source in SOURCES:
            module_dir = download(source, Path(work))
            license_file = f"licenses/{source.project}.txt"
            license_sha = put(out, license_file, (module_dir / "LICENSE").read_text(encoding="utf-8"))
            modules.append(
                {
                    "project": source.project,
                    "module": source.module,
                    "version": source.version,
                    "go_sum": source.sum,
                    "license": source.license,
                    "license_file": license_file,
                    "license_sha256": license_sha,
                    "crds": crd_entries(source, module_dir, out),
                }
            )
    put(out, "sources.json", json.dumps({"generator": "tools/crds.py", "modules": modules}, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="target folder (default: schemas/crds)")
    out = parser.parse_args().out
    readme = (out / "README.md").read_bytes() if (out / "README.md").is_file() else None
    if out.exists():
        shutil.rmtree(out)
    produce(out)
    if readme is not None:
        (out / "README.md").write_bytes(readme)


if __name__ == "__main__":
    main()
