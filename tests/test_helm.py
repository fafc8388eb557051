"""The Helm chart: rendered from the plan per profile, the overlay's objects for every profile,
lint-clean, no derivation in Go, and values that are exactly the install-time tunables."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import jsonschema
import pytest
import yaml

from conftest import CRDS, PROFILES
from imageflow_gen.pipeline import build
from imageflow_gen.targets.kubernetes import identity
from imageflow_gen.validate import tools as gates
from imageflow_gen.writing import write

PROFILE_NAMES = ["dev", "staging", "prod"]
# The Go template actions the issue limits (at most 40 in all, for any profile).
_CONTROL = re.compile(r"\{\{-?\s*(if|else|range|with|define|include|tpl|template|block)\b")


def chart(profile: str) -> str:
    return f"helm/{profile}"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("out")
    for profile in PROFILE_NAMES:
        write(root, profile, build(PROFILES, profile, CRDS).files)
    return root


def _objects(text: str) -> dict:
    return {identity(o): o for o in gates.without_hooks(text)}


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_helm_template_equals_kustomize_build(rendered: Path, profile: str) -> None:
    template, helm_text = gates.helm_template(rendered, chart(profile), f"{chart(profile)}/values.yaml")
    built, kustomize_text = gates.kustomize_build(rendered, f"kustomize/overlays/{profile}")
    assert not template.problems and not built.problems
    helm_objects, kustomize_objects = _objects(helm_text), _objects(kustomize_text)
    # The chart is the profile's plan too: it names the same source, so objects are equal outright.
    assert all("imageflow.io/source" in o["metadata"]["annotations"] for o in helm_objects.values())
    assert sorted(helm_objects) == sorted(kustomize_objects)
    assert [key for key in helm_objects if helm_objects[key] != kustomize_objects[key]] == []
    assert gates.same_objects(helm_text, kustomize_text, "v.yaml").problems == []


def test_same_objects_reports_a_difference() -> None:
    a = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  namespace: n\ndata:\n  k: a\n"
    b = a.replace("k: a", "k: b")
    (problem,) = gates.same_objects(a, b, "helm/prod/values.yaml").problems
    assert str(problem) == "helm/prod/values.yaml ConfigMap n/x: the chart and the overlay render it differently"
    (problem,) = gates.same_objects(a, "", "v.yaml").problems
    assert problem.message == "missing from the overlay"


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_helm_lint_strict_and_kubeconform_pass(rendered: Path, profile: str) -> None:
    assert gates.helm_lint(rendered, chart(profile), None).problems == []
    _, text = gates.helm_template(rendered, chart(profile), f"{chart(profile)}/values.yaml")
    assert gates.kubeconform(rendered, text, "chart", "1.28", CRDS, {}).problems == []


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_no_derivation_in_go(rendered: Path, profile: str) -> None:
    """Templates are the planned objects: lookups of tunables, no control actions, no helpers."""
    templates = sorted((rendered / chart(profile) / "templates").rglob("*"))
    texts = [p.read_text() for p in templates if p.is_file()]
    assert sum(len(_CONTROL.findall(t)) for t in texts) == 0
    assert not any(p.name.startswith("_") for p in templates)
    actions = [a for t in texts for a in re.findall(r"\{\{.*?\}\}", t)]
    allowed = re.compile(
        r'\{\{ ((sub 100 \()?index \.Values( "[a-z0-9_-]+")+\)?) \| toJson \}\}'
        r'|\{\{ "\{\{" \}\}|\{\{ \.Release\.Name \}\}'
    )
    assert actions and [a for a in actions if not allowed.fullmatch(a)] == []


def _values(rendered: Path, profile: str) -> dict:
    return yaml.safe_load((rendered / chart(profile) / "values.yaml").read_text())


def test_values_are_the_tunables_under_the_profiles_own_keys(rendered: Path) -> None:
    values = _values(rendered, "prod")
    assert sorted(values) == ["edge", "observability", "processing", "storage", "workloads"]
    assert values["storage"]["postgresql"]["image"] == "docker.io/library/postgres:16.4"
    assert values["workloads"]["triton"]["image"] == "nvcr.io/nvidia/tritonserver:24.08-py3"
    services = values["processing"]["services"]
    assert services["grpc-gateway"]["replicas"] == 2 and "replicas" not in services["filter"]
    assert services["filter"]["autoscaling"] == {"min_replicas": 2, "max_replicas": 6}
    assert services["filter"]["release"]["canary_weight"] == 0
    assert services["resize"]["release"]["active"] == "blue"
    assert values["storage"]["minio"]["resources"]["requests"] == {"cpu": "250m", "memory": "512Mi"}
    text = (rendered / chart("prod") / "values.yaml").read_text()
    assert "    # Replicas when not autoscaled.\n      replicas: 2\n" in text.replace("\n      # Container", "")
    readme = (rendered / chart("prod") / "README.md").read_text()
    assert "processing.services.filter.release.canary\\_weight" in readme and "What needs a re-render" in readme


@pytest.mark.parametrize(
    ("setting", "changed"),
    [
        (
            "processing.services.grpc-gateway.replicas=7",
            {("apps", "Deployment", "imageflow-processing", "grpc-gateway"): [("spec.replicas", 7)]},
        ),
        (
            "processing.services.filter.release.canary_weight=30",
            {
                ("networking.istio.io", "VirtualService", "imageflow-processing", "filter"): [
                    ("spec.http.0.route.0.weight", 70),
                    ("spec.http.0.route.1.weight", 30),
                ]
            },
        ),
        (
            "processing.services.resize.release.active=green",
            {("", "Service", "imageflow-processing", "resize"): [("spec.selector.color", "green")]},
        ),
        (
            "storage.minio.image=quay.io/minio/minio:RELEASE.2025-01-01T00-00-00Z",
            {
                ("apps", "StatefulSet", "imageflow-storage", "minio"): [
                    ("spec.template.spec.containers.0.image", "quay.io/minio/minio:RELEASE.2025-01-01T00-00-00Z")
                ]
            },
        ),
    ],
)
def test_a_set_tunable_changes_exactly_its_fields(rendered: Path, setting: str, changed: dict) -> None:
    values = f"{chart('prod')}/values.yaml"
    before = _objects(gates.helm_template(rendered, chart("prod"), values)[1])
    result, text = gates.helm_template(rendered, chart("prod"), values, setting)
    assert not result.problems
    after = _objects(text)
    assert sorted(after) == sorted(before)
    diffs = {key: _diff(before[key], after[key]) for key in before if before[key] != after[key]}
    assert diffs == changed


def _diff(a: object, b: object, path: str = "") -> list[tuple[str, object]]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b)) for d in _diff(a.get(k), b.get(k), f"{path}.{k}".lstrip("."))]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in _diff(x, y, f"{path}.{i}")]
    return [] if a == b else [(path, b)]


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("processing.services.grpc-gateway.replicas=many", "replicas"),
        ("processing.services.grpc-gateway.colour=blue", "colour"),
        ("processing.services.filter.release.canary_weight=130", "canary_weight"),
        ("processing.services.resize.release.active=red", "active"),
        ("storage.minio.image=minio:latest", "image"),
    ],
)
def test_values_schema_refuses_what_is_not_a_tunable_of_its_type(rendered: Path, setting: str, expected: str) -> None:
    result, _ = gates.helm_template(rendered, chart("prod"), f"{chart('prod')}/values.yaml", setting)
    assert result.problems and expected in " ".join(p.message for p in result.problems)
    schema = json.loads((rendered / chart("prod") / "values.schema.json").read_text())
    jsonschema.validate(_values(rendered, "prod"), schema)


def test_a_profile_string_cannot_start_a_go_action(tmp_path: Path) -> None:
    profiles = tmp_path / "profiles"
    shutil.copytree(PROFILES, profiles)
    base = (profiles / "base.yaml").read_text()
    hostile = '{{ .Release.Name }} {{- fail "x" }}'
    (profiles / "base.yaml").write_text(base.replace("purpose: Web UI, API Gateway", f"purpose: '{hostile}'", 1))
    out = tmp_path / "out"
    write(out, "dev", build(profiles, "dev", CRDS).files)
    result, text = gates.helm_template(out, chart("dev"), f"{chart('dev')}/values.yaml")
    assert not result.problems
    (namespace,) = [
        o
        for o in yaml.safe_load_all(text)
        if o and o["kind"] == "Namespace" and o["metadata"]["annotations"]["imageflow.io/purpose"] == hostile
    ]


def test_chart_follows_helm_conventions(rendered: Path) -> None:
    meta = yaml.safe_load((rendered / chart("prod") / "Chart.yaml").read_text())
    assert meta["apiVersion"] == "v2" and meta["name"] == "imageflow" and meta["kubeVersion"] == ">= 1.28.0-0"
    assert (rendered / chart("prod") / "templates/NOTES.txt").is_file()
    hooks = [
        o
        for o in yaml.safe_load_all(gates.helm_template(rendered, chart("prod"), f"{chart('prod')}/values.yaml")[1])
        if o and (o["metadata"].get("annotations") or {}).get("helm.sh/hook") == "test"
    ]
    pods = [o for o in hooks if o["kind"] == "Pod"]
    assert len(pods) == 4 and all("-addr=" in o["spec"]["containers"][0]["args"][0] for o in pods)
    assert sorted(o["metadata"]["name"] for o in hooks if o["kind"] == "NetworkPolicy") == [
        "allow-helm-test-egress",
        "allow-helm-test-ingress",
    ]


def test_notes_name_the_release_and_quote_profile_text(rendered: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """NOTES.txt is a Go template too: the release name is an action, profile text is literal."""
    monkeypatch.setenv("KUBECONFIG", "/dev/null")  # a client-side dry run: no cluster
    proc = gates._run(
        [str(gates.find("helm")), "install", "myrel", chart("prod"), "--dry-run=client"],
        cwd=rendered,
    )
    assert proc.returncode == 0, proc.stderr
    notes = proc.stdout.split("NOTES:", 1)[1]
    assert "is installed as release myrel." in notes and "helm test myrel" in notes
    assert "Secret imageflow-api-tls in istio-system" in notes


def test_the_values_schema_grows_by_a_reference_per_service_not_a_copy(tmp_path: Path) -> None:
    """A service's schema is a `$ref` to a shape it shares: at thousands of services the
    schema once passed Helm's 5 MiB limit on a chart file and `helm template` refused the chart."""
    import sys

    from conftest import REPO

    sys.path.insert(0, str(REPO / "bench"))
    from gen_topology import write as synthetic

    sizes = {}
    for count in (20, 60):
        profiles = tmp_path / f"p{count}"
        shutil.copytree(PROFILES, profiles)
        synthetic(count, profiles)
        files = build(profiles, f"synthetic-{count}", CRDS).files
        text = files[f"helm/synthetic-{count}/values.schema.json"]
        sizes[count] = len(text)
        schema = json.loads(text)
        assert set(schema["$defs"]) and all(
            list(node) == ["$ref"]
            for node in schema["properties"]["processing"]["properties"]["services"]["properties"].values()
        )
        values = yaml.safe_load(files[f"helm/synthetic-{count}/values.yaml"])
        jsonschema.validate(values, schema)
        wrong = json.loads(json.dumps(values))
        next(iter(wrong["processing"]["services"].values()))["replicas"] = "many"
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(wrong, schema)
    # Bytes per further service: its name, a $ref and its place in `required` (a copy was 5 KB).
    assert (sizes[60] - sizes[20]) / 40 < 200, sizes
