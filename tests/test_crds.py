"""The CRD schemas shipped in schemas/crds: reproducible from the pinned upstream modules,
recorded with their sources, strict, and used by default wherever the tool runs."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import CRDS, PROFILES, REPO, run_cli
from imageflow_gen.validate import schema_problems
from imageflow_gen.validate.kubernetes import SchemaStore

SHIPPED = REPO / "schemas" / "crds"
SOURCES = json.loads((SHIPPED / "sources.json").read_text(encoding="utf-8"))


def _script():
    """tools/crds.py as a module (it is a script, not part of the package)."""
    if "crds_script" not in sys.modules:
        spec = importlib.util.spec_from_file_location("crds_script", REPO / "tools" / "crds.py")
        sys.modules["crds_script"] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules["crds_script"])
    return sys.modules["crds_script"]


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_shipped_crds_are_what_the_script_produces(tmp_path: Path) -> None:
    """Fetches the pinned modules with `go mod download` (sums checked) and derives it all again."""
    proc = subprocess.run(
        [sys.executable, "tools/crds.py", "--out", str(tmp_path / "crds")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    shipped = {k: v for k, v in tree(SHIPPED).items() if k != "README.md"}
    produced = tree(tmp_path / "crds")
    assert sorted(shipped) == sorted(produced)
    assert [name for name in shipped if shipped[name] != produced[name]] == []


def test_every_shipped_file_is_recorded_with_its_checksum() -> None:
    import hashlib

    recorded = {"sources.json"}
    for module in SOURCES["modules"]:
        assert module["go_sum"].startswith("h1:") and module["license"] == "Apache-2.0"
        license_text = (SHIPPED / module["license_file"]).read_bytes()
        assert b"Apache License" in license_text[:200]
        assert hashlib.sha256(license_text).hexdigest() == module["license_sha256"]
        recorded.add(module["license_file"])
        for crd in module["crds"]:
            files = {crd["file"]: crd["sha256"], **crd["schemas"]}
            for name, digest in files.items():
                assert hashlib.sha256((SHIPPED / name).read_bytes()).hexdigest() == digest, name
            recorded.update(files)
    assert set(tree(SHIPPED)) - {"README.md"} == recorded


def test_the_pins_in_the_script_are_the_recorded_ones() -> None:
    pins = {(s.module, s.version, s.sum) for s in _script().SOURCES}
    assert pins == {(m["module"], m["version"], m["go_sum"]) for m in SOURCES["modules"]}


def test_each_shipped_crd_file_is_the_upstream_definition_of_its_schemas() -> None:
    import yaml

    for module in SOURCES["modules"]:
        for crd in module["crds"]:
            definition = yaml.safe_load((SHIPPED / crd["file"]).read_text(encoding="utf-8"))
            assert definition["kind"] == "CustomResourceDefinition" and definition["metadata"]["name"] == crd["name"]
            spec = definition["spec"]
            served = sorted(
                f"{spec['group']}/{crd['kind'].lower()}_{v['name']}.json" for v in spec["versions"] if v["served"]
            )
            assert sorted(crd["schemas"]) == served


STRICT = _script().strict


def test_derivation_closes_objects_and_spells_out_kubernetes_extensions() -> None:
    openapi = {
        "type": "object",
        "description": "prose",
        "properties": {
            "port": {"x-kubernetes-int-or-string": True},
            "flag": {"type": "boolean", "nullable": True},
            "mode": {"type": "string", "enum": ["a", "b"], "nullable": True},
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True, "properties": {"x": {}}},
            "description": {"type": "string", "default": {"description": "kept"}},
        },
    }
    assert STRICT(openapi) == {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "port": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
            "flag": {"type": ["boolean", "null"]},
            "mode": {"type": ["string", "null"], "enum": ["a", "b", None]},
            "free": {"type": "object", "properties": {"x": {}}},
            "description": {"type": "string", "default": {"description": "kept"}},
        },
    }


def test_every_shipped_schema_is_closed_at_the_top_for_kubeconform_too() -> None:
    for module in SOURCES["modules"]:
        for crd in module["crds"]:
            for name in crd["schemas"]:
                schema = json.loads((SHIPPED / name).read_text(encoding="utf-8"))
                assert schema["additionalProperties"] is False, name
                assert {"apiVersion", "kind", "metadata", "spec"} <= set(schema["properties"]), name


@pytest.fixture(scope="module")
def store() -> SchemaStore:
    return SchemaStore("1.28", CRDS)


def problems(store: SchemaStore, obj: dict) -> list[str]:
    return [p.message for p in schema_problems(store, [("x.yaml", obj)])]


def virtual_service(**spec: object) -> dict:
    return {
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "VirtualService",
        "metadata": {"name": "v", "namespace": "n"},
        "spec": {"hosts": ["a"], **spec},
    }


def test_unknown_fields_are_refused_at_every_depth(store: SchemaStore) -> None:
    assert problems(store, virtual_service(http=[{"route": [{"destination": {"host": "a"}, "weight": 100}]}])) == []
    deep = virtual_service(http=[{"route": [{"destination": {"host": "a", "prot": 1}}]}])
    assert problems(store, deep) == ["unknown field 'prot'"]
    assert problems(store, virtual_service(http=[{"retries": {"attempts": "3"}}]))  # wrong type


@pytest.mark.parametrize(
    "api_version, kind",
    [
        ("networking.istio.io/v1beta1", "Gateway"),
        ("networking.istio.io/v1beta1", "DestinationRule"),
        ("networking.istio.io/v1", "VirtualService"),
        ("security.istio.io/v1", "AuthorizationPolicy"),
        ("security.istio.io/v1", "PeerAuthentication"),
        ("argoproj.io/v1alpha1", "Application"),
        ("argoproj.io/v1alpha1", "AppProject"),
        ("external-secrets.io/v1", "ExternalSecret"),
        ("external-secrets.io/v1", "SecretStore"),
        ("external-secrets.io/v1", "ClusterSecretStore"),
        ("bitnami.com/v1alpha1", "SealedSecret"),
    ],
)
def test_every_kind_the_output_may_use_has_a_strict_shipped_schema(
    store: SchemaStore, api_version: str, kind: str
) -> None:
    obj = {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": "x", "namespace": "n"},
        "spec": {"surely-not-a-field": 1},
    }
    found = problems(store, obj)
    assert found and not any("no schema" in m for m in found)
    assert any("unknown field 'surely-not-a-field'" in m for m in found), found


def test_render_and_validate_need_no_flag_from_any_directory(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "IMAGEFLOW_CRD_SCHEMAS"}
    result = run_cli(
        "validate", "--profile", "prod", "--profiles-dir", str(PROFILES), "--no-tools", cwd=tmp_path, env=env
    )
    assert result.code == 0, result.stderr
    result = run_cli(
        "render", "--profile", "prod", "--profiles-dir", str(PROFILES), "--out", "out", "--quiet", cwd=tmp_path, env=env
    )
    assert result.code == 0, result.stderr
    assert (tmp_path / "out/kustomize/overlays/prod/kustomization.yaml").is_file()


def test_crd_schemas_option_adds_folders_searched_first(tmp_path: Path) -> None:
    folder = tmp_path / "mine" / "networking.istio.io"
    folder.mkdir(parents=True)
    # A stricter local VirtualService schema: hosts may hold at most zero items.
    schema = json.loads((SHIPPED / "networking.istio.io/virtualservice_v1beta1.json").read_text())
    schema["properties"]["spec"]["properties"]["hosts"]["maxItems"] = 0
    (folder / "virtualservice_v1beta1.json").write_text(json.dumps(schema))
    result = run_cli("validate", "--profile", "prod", "--no-tools", "--crd-schemas", str(tmp_path / "mine"))
    assert result.code == 1 and "VirtualService" in result.stderr and "hosts" in result.stderr
    result = run_cli(
        "validate", "--profile", "prod", "--no-tools", env={"IMAGEFLOW_CRD_SCHEMAS": str(tmp_path / "mine")}
    )
    assert result.code == 1 and "hosts" in result.stderr


@pytest.mark.parametrize("provider", ["external-secrets", "sealed-secrets", "out-of-band"])
def test_every_secrets_provider_passes_the_shipped_schemas(provider: str, tmp_path: Path) -> None:
    from imageflow_gen.model.checks import secret_refs
    from imageflow_gen.pipeline import build, validated
    from imageflow_gen.targets.kubernetes import objects
    from test_hostile import profile_with

    refs = {ref.name: sorted(ref.keys.values()) for _, _, ref, _ in secret_refs(validated(PROFILES, "prod")[1])}
    secrets = {"provider": provider}
    if provider == "sealed-secrets":
        secrets["sealed"] = {name: {key: "AgB" + "x" * 40 for key in keys} for name, keys in refs.items()}
    profiles = profile_with(tmp_path, "secrets", {"purpose": "secrets", "extends": "prod", "secrets": secrets})
    build(profiles, "secrets")  # every object it renders passes the shipped schemas
    kinds = {obj["kind"] for obj in objects(validated(profiles, "secrets")[2])}
    expected = {"external-secrets": {"ExternalSecret"}, "sealed-secrets": {"SealedSecret"}, "out-of-band": set()}
    assert kinds & {"ExternalSecret", "SealedSecret"} == expected[provider]
