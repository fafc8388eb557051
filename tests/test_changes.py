"""`plan`: what a render will do to the running cluster, classified from the committed state and
a new render; `render` refusing to put data at risk; the immutability rules quoted from the
Kubernetes source they come from, and held to what a real API server refuses."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import PROFILES, REPO
from imageflow_gen.changes import classify, key, state
from imageflow_gen.pipeline import validated
from imageflow_gen.resources import upstream_crds
from imageflow_gen.targets.kubernetes import objects
from imageflow_gen.validate import tools as gates
from imageflow_gen.validate.apiserver import LocalApiServer, dry_run

CLI = [sys.executable, "-m", "imageflow_gen"]
KUBERNETES = "v1.28.9"


def _module() -> Path:
    """Where tools/kube.sh downloads the Kubernetes module it builds the API server from."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "imageflow-gen" / "go-mod" / "k8s.io" / f"kubernetes@{KUBERNETES}"


def test_every_rule_quotes_the_kubernetes_source_that_enforces_it() -> None:
    data = json.loads((REPO / "schemas" / "immutable-fields.json").read_text())
    assert data["kubernetes"] == KUBERNETES and data["license"] and data["how"]
    module = _module()
    assert module.is_dir(), f"run `make tools` first: {module} is missing"
    for kind, kind_rules in data["kinds"].items():
        for rule in kind_rules:
            text = (module / rule["source"]).read_text()
            assert rule["quote"] in text, (kind, rule["quote"])
            assert {"fields", "all_but", "grow_only"} & set(rule), kind


def test_the_custom_resources_have_no_immutable_fields_to_add() -> None:
    """The rules cover the built-in kinds; a CRD's transition rules (`oldSelf` in its
    x-kubernetes-validations) would add its own. The CRDs the output uses have none."""
    upstream = sorted((REPO / "schemas" / "crds" / "upstream").glob("*.yaml"))
    assert upstream
    assert [p.name for p in upstream if "oldSelf" in p.read_text()] == []


def _profiles(tmp_path: Path, edit: Callable[[str], str] | None = None) -> Path:
    folder = tmp_path / "profiles"
    shutil.copytree(PROFILES, folder, dirs_exist_ok=True)
    if edit is not None:
        (folder / "prod.yaml").write_text(edit((folder / "prod.yaml").read_text()))
    return folder


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=cwd, timeout=600)


def _replace(old: str, new: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        assert old in text, old
        return text.replace(old, new, 1)

    return edit


GATEWAY = "    - name: grpc-gateway\n      replicas: 2\n"
MESH = _replace(GATEWAY, GATEWAY + "      load_balancing: mesh\n")
CANARY_MESH = _replace(GATEWAY, GATEWAY + "      load_balancing: mesh\n      release: {strategy: canary}\n")
CANARY = _replace(GATEWAY, GATEWAY + "      release: {strategy: canary}\n")
SHRINK = _replace("      size: 400Gi\n", "      size: 300Gi\n")


def _state(tmp_path: Path, edit: Callable[[str], str] | None) -> dict[str, Any]:
    return state(objects(validated(_profiles(tmp_path, edit), "prod")[2]))


def test_a_release_strategy_switch_recreates_exactly_its_deployment(tmp_path: Path) -> None:
    """grpc-gateway from rolling to canary (its Service balanced by the mesh both times): its
    Deployment's selector gains the track, so it must be recreated; its Service and budget
    change in place; the canary's Deployment, Service and route are new."""
    old, new = _state(tmp_path / "a", MESH), _state(tmp_path / "b", CANARY_MESH)
    changes = {c.key: c for c in classify(old, new)}
    recreate = sorted(k for k, c in changes.items() if c.category in ("recreate", "data-at-risk"))
    assert recreate == ["apps/v1 Deployment imageflow-processing/grpc-gateway"]
    assert changes[recreate[0]].fields == ("spec.selector",)
    assert changes["v1 Service imageflow-processing/grpc-gateway"].category == "in-place"
    assert changes["apps/v1 Deployment imageflow-processing/grpc-gateway-canary"].category == "added"


def test_a_headless_service_that_stops_being_headless_is_recreated(tmp_path: Path) -> None:
    """The same switch with the client's balancing prod has: the canary needs the mesh, so the
    Service gains a cluster IP, which Kubernetes refuses to set on a headless Service."""
    changes = {c.key: c for c in classify(_state(tmp_path / "a", None), _state(tmp_path / "b", CANARY))}
    service = changes["v1 Service imageflow-processing/grpc-gateway"]
    assert service.category == "recreate" and "spec.clusterIP" in service.fields


def test_plan_exits_3_on_recreate_and_prints_json(tmp_path: Path) -> None:
    profiles = _profiles(tmp_path, MESH)
    fresh = _cli("plan", "--profile", "prod", "--out", "out", cwd=profiles.parent)
    assert fresh.returncode == 0 and "out/state/prod.json does not exist" in fresh.stderr
    assert "apps/v1 Deployment imageflow-processing/grpc-gateway" in fresh.stdout
    assert _cli("render", "--profile", "prod", "--out", "out", "-q", cwd=profiles.parent).returncode == 0
    same = _cli("plan", "--profile", "prod", "--out", "out", cwd=profiles.parent)
    assert same.returncode == 0 and "profile prod: no change against out" in same.stdout
    (profiles / "prod.yaml").write_text(CANARY_MESH((PROFILES / "prod.yaml").read_text()))
    result = _cli("plan", "--profile", "prod", "--out", "out", "--format", "json", cwd=profiles.parent)
    assert result.returncode == 3, result.stderr
    data = json.loads(result.stdout)
    assert data["worst"] == "recreate"
    rows = {r["object"]: r for r in data["changes"]}
    assert rows["apps/v1 Deployment imageflow-processing/grpc-gateway"] == {
        "object": "apps/v1 Deployment imageflow-processing/grpc-gateway",
        "change": "recreate",
        "detail": "immutable: spec.selector",
        "fields": ["spec.selector"],
    }


def test_a_shrinking_volume_is_data_at_risk_and_render_refuses_it(tmp_path: Path) -> None:
    profiles = _profiles(tmp_path)
    assert _cli("render", "--profile", "prod", "--out", "out", "-q", cwd=profiles.parent).returncode == 0
    before = (profiles.parent / "out" / "state" / "prod.json").read_text()
    (profiles / "prod.yaml").write_text(SHRINK((PROFILES / "prod.yaml").read_text()))
    plan = _cli("plan", "--profile", "prod", "--out", "out", cwd=profiles.parent)
    assert plan.returncode == 4, plan.stderr
    assert re.search(r"data-at-risk +apps/v1 StatefulSet imageflow-storage/minio +\(volume would shrink", plan.stdout)
    refused = _cli("render", "--profile", "prod", "--out", "out", cwd=profiles.parent)
    assert refused.returncode == 4 and "Traceback" not in refused.stderr
    assert (
        "out/state/prod.json apps/v1 StatefulSet imageflow-storage/minio: volume would shrink: data 400Gi -> "
        "300Gi; render with --allow-data-loss to go on" in refused.stderr
    )
    assert "nothing written" in refused.stderr
    assert (profiles.parent / "out" / "state" / "prod.json").read_text() == before
    allowed = _cli("render", "--profile", "prod", "--out", "out", "-q", "--allow-data-loss", cwd=profiles.parent)
    assert allowed.returncode == 0, allowed.stderr
    assert (profiles.parent / "out" / "state" / "prod.json").read_text() != before


def test_removing_what_holds_data_is_at_risk() -> None:
    old = {
        "objects": {
            "v1 PersistentVolumeClaim ns/x": {"sha256": "a", "data": True},
            "v1 ConfigMap ns/c": {"sha256": "b"},
        }
    }
    assert [(c.key, c.category) for c in classify(old, {"objects": {}})] == [
        ("v1 ConfigMap ns/c", "removed"),
        ("v1 PersistentVolumeClaim ns/x", "data-at-risk"),
    ]


def test_a_pod_template_change_is_a_rollout_that_says_how(tmp_path: Path) -> None:
    edit = _replace(
        "      replicas: 2\n      node_type: cpu-intensive\n",
        "      replicas: 2\n      node_type: cpu-intensive\n      env: [{name: X, value: y}]\n",
    )
    changes = {c.key: c for c in classify(_state(tmp_path / "a", None), _state(tmp_path / "b", edit))}
    rollout = changes["apps/v1 Deployment imageflow-processing/grpc-gateway"]
    assert rollout.category == "rollout" and rollout.detail.startswith("2 pods, RollingUpdate")


# ---- held to the API server -------------------------------------------------------------------

SCENARIOS = {
    "release switch, mesh": (MESH, CANARY_MESH),
    "release switch, headless": (None, CANARY),
    "volume shrink": (None, SHRINK),
    "volume growth": (None, _replace("      size: 400Gi\n", "      size: 500Gi\n")),
    "port change": (None, _replace(GATEWAY, GATEWAY + "      port: 9090\n")),
    "node placement": (None, _replace("    - name: ai-detection\n", "    - name: ai-detection\n      replicas: 2\n")),
}


@pytest.fixture(scope="module")
def server() -> Iterator[LocalApiServer]:
    binaries = {name: gates.find(name) for name in ("etcd", "kube-apiserver", "kube-pki")}
    missing = [name for name, path in binaries.items() if path is None]
    assert not missing, f"run `make tools` first; missing: {', '.join(missing)}"
    with LocalApiServer({k: v for k, v in binaries.items() if v}, upstream_crds()) as running:
        yield running


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_the_api_server_refuses_exactly_what_plan_calls_recreate(
    server: LocalApiServer, scenario: str, tmp_path: Path
) -> None:
    """The scenario's old render is applied for real, then its new render dry-run over it:
    every object the server refuses is classified recreate (or data at risk, when it holds
    data), and every object classified so is refused."""
    before, after = SCENARIOS[scenario]
    old_objects = objects(validated(_profiles(tmp_path / "old", before), "prod")[2])
    new_objects = objects(validated(_profiles(tmp_path / "new", after), "prod")[2])
    client = server.client
    _apply_for_real(client, old_objects)
    changes = classify(state(old_objects), state(new_objects))
    refused = {}
    for obj in new_objects:
        status, body, _ = client.apply(obj, dry_run=True)
        if status >= 300:
            refused[key(obj)] = body.get("message", "")
    present = {key(o): o for o in new_objects}
    recreate = {c.key: c for c in changes if c.category in ("recreate", "data-at-risk") and c.key in present}
    assert set(refused) <= set(recreate), (scenario, refused)
    for k in sorted(set(recreate) - set(refused)):
        # Accepted, but not as rendered: the server keeps an immutable field's old value (a
        # headless Service stays headless). Only recreating it applies the change.
        obj = present[k]
        client.apply(obj)
        _, stored, _ = client.request("GET", client.path(obj))
        kept = [f for f in recreate[k].fields if _get(stored, f) != _get(obj, f)]
        assert kept, (scenario, k, "accepted as rendered, yet classified recreate")
    assert all(not _fields_kept(client, present[c.key]) for c in changes if c.category == "in-place"), scenario


def _get(obj: Any, path: str) -> Any:
    for part in path.split("."):
        obj = obj.get(part) if isinstance(obj, dict) else None
    return obj


def _fields_kept(client: Any, obj: dict[str, Any]) -> bool:
    """Whether the server, accepting `obj`, kept an immutable field's other value."""
    from imageflow_gen.changes import rules

    paths = [p for r in rules().get(f"{obj['apiVersion']} {obj['kind']}", []) for p in r.get("fields", [])]
    status, stored, _ = client.apply(obj, dry_run=True)
    return status < 300 and any(_get(obj, p) is not None and _get(stored, p) != _get(obj, p) for p in paths)


def _apply_for_real(client: Any, docs: list[dict[str, Any]]) -> None:
    """Each object stored as it is in `docs`: what an earlier scenario left that cannot be
    changed so is deleted and created again."""
    dry_run(client, docs, bootstrap=True)  # the namespaces and their default accounts
    for obj in docs:
        status, body, _ = client.apply(obj)
        if status == 422:
            client.request("DELETE", client.path(obj))
            status, body, _ = client.apply(obj)
        assert status < 300, (key(obj), body.get("message"))
