"""The Helm chart: same objects as the Kustomize overlay for every profile, lint-clean, and
values checked by values.schema.json (the topology schema)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from conftest import CRDS, PROFILES
from imageflow_gen.loading import walk
from imageflow_gen.model import Topology
from imageflow_gen.pipeline import build
from imageflow_gen.schema import topology_schema
from imageflow_gen.targets.helm import _comment, values_of
from imageflow_gen.targets.kubernetes import identity
from imageflow_gen.validate import tools as gates
from imageflow_gen.writing import write

PROFILE_NAMES = ["dev", "staging", "prod"]
CHART = "helm/imageflow"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("out")
    for profile in PROFILE_NAMES:
        write(root, profile, build(PROFILES, profile, CRDS).files)
    return root


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_helm_template_equals_kustomize_build(rendered: Path, profile: str) -> None:
    template, helm_text = gates.helm_template(rendered, CHART, f"helm/values/{profile}.yaml")
    built, kustomize_text = gates.kustomize_build(rendered, f"kustomize/overlays/{profile}")
    assert not template.problems and not built.problems
    helm_objects = {identity(o): gates.comparable(o) for o in gates.without_hooks(helm_text)}
    kustomize_objects = {identity(o): gates.comparable(o) for o in gates.without_hooks(kustomize_text)}
    assert all("imageflow.io/source" in o["metadata"]["annotations"] for o in gates.without_hooks(kustomize_text))
    assert sorted(helm_objects) == sorted(kustomize_objects)
    different = [key for key in helm_objects if helm_objects[key] != kustomize_objects[key]]
    assert different == []
    assert gates.same_objects(helm_text, kustomize_text, "v.yaml").problems == []


def test_same_objects_reports_a_difference() -> None:
    a = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  namespace: n\ndata:\n  k: a\n"
    b = a.replace("k: a", "k: b")
    (problem,) = gates.same_objects(a, b, "helm/values/prod.yaml").problems
    assert str(problem) == "helm/values/prod.yaml ConfigMap n/x: the chart and the overlay render it differently"
    (problem,) = gates.same_objects(a, "", "v.yaml").problems
    assert problem.message == "missing from the overlay"


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_helm_lint_strict_and_kubeconform_pass(rendered: Path, profile: str) -> None:
    assert gates.helm_lint(rendered, CHART, f"helm/values/{profile}.yaml").problems == []
    _, text = gates.helm_template(rendered, CHART, f"helm/values/{profile}.yaml")
    assert gates.kubeconform(rendered, text, "chart", "1.28", CRDS, {}).problems == []


def test_chart_defaults_lint_and_the_chart_is_the_same_for_every_profile(rendered: Path) -> None:
    assert gates.helm_lint(rendered, CHART, None).problems == []
    charts = [{k: v for k, v in build(PROFILES, p, CRDS).files.items() if k.startswith(CHART + "/")}
              for p in PROFILE_NAMES]
    assert charts[0] and all(c == charts[0] for c in charts)


@pytest.mark.parametrize(("change", "expected"), [
    (lambda v: v["storage"]["minio"].update(nodes="four"), "nodes"),
    (lambda v: v["storage"]["minio"].update(colour="blue"), "colour"),
    (lambda v: v["processing"]["services"][0].update(port=70000), "port"),
])
def test_values_schema_rejects_wrong_types_and_unknown_keys(rendered: Path, tmp_path: Path, change,
                                                            expected: str) -> None:
    values = yaml.safe_load((rendered / "helm/values/prod.yaml").read_text())
    change(values)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(values))
    result = gates.helm_lint(rendered, CHART, str(bad))
    assert result.problems and expected in " ".join(p.message for p in result.problems)
    schema = json.loads((rendered / CHART / "values.schema.json").read_text())
    assert schema == topology_schema()
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(values, schema)


def test_profile_values_are_the_complete_topology(rendered: Path) -> None:
    values = yaml.safe_load((rendered / "helm/values/prod.yaml").read_text())
    topo = Topology.model_validate(values)
    assert values_of(topo) == values
    assert [s["name"] for s in values["processing"]["services"]] == ["grpc-gateway", "resize", "ai-detection", "filter"]


def test_every_values_key_is_commented(rendered: Path) -> None:
    values = yaml.safe_load((rendered / CHART / "values.yaml").read_text())

    free_maps = ("labels", "parameters", "selector", "keys", "ports", "pod_selector")
    field_paths = [p for p, _ in walk(values) if p and isinstance(p[-1], str)
                   and not any(isinstance(part, str) and part in free_maps for part in p[:-1])]
    assert field_paths and [p for p in field_paths if not _comment(p)] == []
    text = (rendered / CHART / "values.yaml").read_text()
    assert "# The K3s cluster (seed 8.1.1).\ncluster:\n" in text
    # Described once, on the first item of a list; the others are plain.
    assert text.count("# Service name (Deployment and Service).") == 1


def test_chart_follows_helm_conventions(rendered: Path) -> None:
    chart = yaml.safe_load((rendered / CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2" and chart["kubeVersion"] == ">= 1.28.0-0"
    templates = {p.name for p in (rendered / CHART / "templates").iterdir()}
    assert {"_helpers.tpl", "NOTES.txt", "tests", "deployment.yaml", "networkpolicy.yaml"} <= templates
    helpers = (rendered / CHART / "templates/_helpers.tpl").read_text()
    assert 'trunc 63' in helpers and "app.kubernetes.io/name" in helpers
    hooks = [o for o in yaml.safe_load_all(gates.helm_template(rendered, CHART, "helm/values/prod.yaml")[1]) if o
             and (o["metadata"].get("annotations") or {}).get("helm.sh/hook") == "test"]
    pods = [o for o in hooks if o["kind"] == "Pod"]
    assert len(pods) == 4 and all("-addr=" in o["spec"]["containers"][0]["args"][0] for o in pods)
