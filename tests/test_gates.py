"""Validation gates: the built-in schema checks and the real tools, on real output and on defects.

The tools come from `make tools` (.tools/bin, found through IMAGEFLOW_TOOLS). A missing tool
fails these tests: a gate that did not run has not passed.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from conftest import CRDS, PROFILES, REPO
from imageflow_gen.errors import ValidationFailed
from imageflow_gen.pipeline import build, validated
from imageflow_gen.targets.kubernetes import identity, objects
from imageflow_gen.validate import parse_problems, schema_problems
from imageflow_gen.validate import tools as gates
from imageflow_gen.validate.kubernetes import SchemaStore
from imageflow_gen.writing import write
from imageflow_gen.yamlio import parse_all

PROFILE_NAMES = ["dev", "staging", "prod"]
NAMESPACE = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "imageflow-web", "labels": {"a": "b"}}}


@pytest.fixture(scope="module", autouse=True)
def tools_installed() -> None:
    missing = [t for t in ("kubectl", "helm", "kubeconform", "check-jsonschema") if gates.find(t) is None]
    assert not missing, f"run `make tools` first; missing: {', '.join(missing)}"


@pytest.fixture(scope="module")
def store() -> SchemaStore:
    return SchemaStore("1.28", CRDS)


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_every_profile_passes_every_gate(profile: str, tmp_path: Path) -> None:
    result = build(PROFILES, profile, CRDS)
    write(tmp_path, profile, result.files)
    outcomes = gates.run_all(tmp_path, profile, "1.28", CRDS, result.objects)
    assert {o.tool for o in outcomes} >= {"kubectl kustomize", "kubeconform"}
    assert [(o.tool, o.skipped, [str(p) for p in o.problems]) for o in outcomes if o.skipped or o.problems] == []


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_kustomize_builds_exactly_the_profile_objects(profile: str, tmp_path: Path) -> None:
    write(tmp_path, profile, build(PROFILES, profile, CRDS).files)
    result, built = gates.kustomize_build(tmp_path, f"kustomize/overlays/{profile}")
    assert not result.problems
    expected = {identity(o): o for o in objects(validated(PROFILES, profile)[2])}
    assert {identity(o): o for o in parse_all(built)} == expected


def problems_of(store: SchemaStore, obj: dict) -> list[str]:
    return [str(p) for p in schema_problems(store, [("kustomize/base/x.yaml", obj)])]


def test_misspelled_field_is_caught_with_its_location(store: SchemaStore) -> None:
    obj = {**NAMESPACE, "metadata": {"name": "imageflow-web", "lables": {"a": "b"}}}
    assert problems_of(store, obj) == ["kustomize/base/x.yaml Namespace imageflow-web metadata: unknown field 'lables'"]


def test_wrong_type_is_caught(store: SchemaStore) -> None:
    obj = {**NAMESPACE, "metadata": {"name": "imageflow-web", "labels": {"a": 1}}}
    assert problems_of(store, obj) == [
        "kustomize/base/x.yaml Namespace imageflow-web metadata.labels.a: 1 is not of type 'string', 'null'"
    ]


def test_kind_without_schema_is_an_error_not_a_skip(store: SchemaStore) -> None:
    (message,) = problems_of(store, {"apiVersion": "example.com/v1", "kind": "Frobnicator", "metadata": {"name": "f"}})
    assert "no schema for Frobnicator in example.com/v1" in message


def test_custom_resources_are_checked_strictly_against_crd_schemas(store: SchemaStore) -> None:
    vs = {
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "VirtualService",
        "metadata": {"name": "v", "namespace": "n"},
        "spec": {"hosts": ["a"], "htp": []},
        "extra": 1,
    }
    found = problems_of(store, vs)
    assert any("spec: unknown field 'htp'" in m for m in found) and any("unknown field 'extra'" in m for m in found)
    assert problems_of(SchemaStore("1.28", []), vs)[0].endswith("(Kubernetes 1.28, CRD locations: none)")


def test_duplicate_key_is_caught_with_its_line() -> None:
    (problem,) = parse_problems({"kustomize/base/x.yaml": "apiVersion: v1\nkind: Namespace\nkind: Namespace\n"})
    assert str(problem.location) == "kustomize/base/x.yaml:3:1" and "duplicate key" in problem.message


def test_build_refuses_to_write_output_that_fails_a_gate(monkeypatch: pytest.MonkeyPatch) -> None:
    from imageflow_gen.targets import kustomize

    original = kustomize.objects
    monkeypatch.setattr(
        kustomize, "objects", lambda plan: [{**o, "metadata": {**o["metadata"], "lables": {}}} for o in original(plan)]
    )
    with pytest.raises(ValidationFailed) as caught:
        build(PROFILES, "prod", CRDS)
    assert "unknown field 'lables'" in str(caught.value)


def test_kubeconform_catches_what_the_built_in_gate_catches(tmp_path: Path) -> None:
    bad = (
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n  lables: {}\n---\n"
        "apiVersion: example.com/v1\nkind: Frobnicator\nmetadata:\n  name: f\n"
    )
    result = gates.kubeconform(tmp_path, bad, "built.yaml", "1.28", CRDS, {"Namespace a": "base/ns-a.yaml"})
    found = {str(p.location): p.message for p in result.problems}
    assert "lables" in found["base/ns-a.yaml"] and "Frobnicator" in found["built.yaml"]


def test_broken_overlay_is_caught(tmp_path: Path) -> None:
    overlay = tmp_path / "kustomize/overlays/prod"
    overlay.mkdir(parents=True)
    (overlay / "kustomization.yaml").write_text("resources:\n- ../../base\n- missing.yaml\n")
    result, built = gates.kustomize_build(tmp_path, "kustomize/overlays/prod")
    (problem,) = result.problems
    assert str(problem.location) == "kustomize/overlays/prod/kustomization.yaml" and built == ""


def test_chart_lint_error_is_caught(tmp_path: Path) -> None:
    chart = tmp_path / "helm/imageflow"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: imageflow\n")  # no version
    (chart / "values.yaml").write_text("replicas: 1\n")
    (chart / "templates/cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Values.nope }}\n")
    result = gates.helm_lint(tmp_path, "helm/imageflow", None)
    assert result.problems and all(str(p.location) == "helm/imageflow/Chart.yaml" for p in result.problems)
    assert any("version" in p.message.lower() for p in result.problems)


def test_compose_typo_is_caught(tmp_path: Path) -> None:
    stack = tmp_path / "compose/prod/vm0"
    stack.mkdir(parents=True)
    (stack / "docker-compose.yaml").write_text("services:\n  web:\n    image: nginx:1.27\n    restrat: always\n")
    result = gates.compose_schema(tmp_path, ["compose/prod/vm0/docker-compose.yaml"])
    assert result.problems and "restrat" in " ".join(p.message for p in result.problems)
    (stack / "docker-compose.yaml").write_text("services:\n  web:\n    image: nginx:1.27\n    restart: always\n")
    assert gates.compose_schema(tmp_path, ["compose/prod/vm0/docker-compose.yaml"]).problems == []


def test_validate_command_runs_the_tools(cli) -> None:
    result = cli("validate", "--profile", "prod")
    assert result.code == 0, result.stderr
    assert "kubeconform: ok" in result.stdout and "kubectl kustomize: ok" in result.stdout


def test_generated_ci_script_validates_the_output_offline(tmp_path: Path) -> None:
    for profile in PROFILE_NAMES:
        write(tmp_path, profile, build(PROFILES, profile, CRDS).files)
    env = {
        **os.environ,
        "PATH": f"{os.environ['IMAGEFLOW_TOOLS']}{os.pathsep}{os.environ['PATH']}",
        "K8S_SCHEMA_LOCATION": str(REPO / ".tools/kubernetes-schemas")
        + "/{{.NormalizedKubernetesVersion}}-standalone{{.StrictSuffix}}/{{.ResourceKind}}{{.KindSuffix}}.json",
        "CRD_SCHEMA_LOCATION": str(CRDS[0]) + "/{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json",
    }
    proc = subprocess.run(["sh", "ci/validate.sh"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # each profile: the overlay, the chart and the Argo CD Application
    assert proc.stdout.count("Invalid: 0, Errors: 0, Skipped: 0") == 3 * len(PROFILE_NAMES)
    found = [int(n) for n in re.findall(r"Summary: (\d+) resources? found", proc.stdout)]
    assert len(found) == 3 * len(PROFILE_NAMES) and all(n > 0 for n in found), proc.stdout
    assert proc.stdout.count("1 chart(s) linted, 0 chart(s) failed") == len(PROFILE_NAMES)
    (tmp_path / "kustomize/base/cluster/namespace-imageflow-web.yaml").write_text(NAMESPACE_TEXT_WITH_TYPO)
    assert subprocess.run(["sh", "ci/validate.sh"], cwd=tmp_path, env=env, capture_output=True).returncode == 1
    workflow = tmp_path / ".github/workflows/validate-imageflow-output.yaml"
    check = subprocess.run(
        [gates.find("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(workflow)],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout


NAMESPACE_TEXT_WITH_TYPO = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: imageflow-web\n  lables: {}\n"
