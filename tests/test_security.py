"""Secure output: Pod Security `restricted`, disruption budgets, spreading, secrets, checkov."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import CRDS, PROFILES, REPO
from imageflow_gen.pipeline import build, validated
from imageflow_gen.plan.exporters import cluster_node_exporter, gpu_exporter
from imageflow_gen.plan.postgresql import server_workload
from imageflow_gen.targets.kubernetes import objects
from imageflow_gen.validate import tools as gates
from imageflow_gen.writing import write

PROFILE_NAMES = ["dev", "staging", "prod"]
ALLOWED_VOLUMES = {
    "configMap",
    "secret",
    "emptyDir",
    "persistentVolumeClaim",
    "projected",
    "downwardAPI",
    "csi",
    "ephemeral",
}
SKIPS = yaml.safe_load((REPO / "tools/checkov-skips.yaml").read_text())


def pods(profile: str):
    for obj in objects(validated(PROFILES, profile)[2]):
        if obj["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            yield obj, obj["spec"]["template"]["spec"]
        elif obj["kind"] == "CronJob":
            yield obj, obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_every_workload_meets_restricted(profile: str) -> None:
    """Every pod is hardened; a typed workload departs from it only by an exception the profile
    states with its reason (a fixed uid, a writable root, a hostPath), and by nothing else."""
    topo = validated(PROFILES, profile)[1]
    stated = {w.name: w for w in topo.workloads if w.namespace}
    if topo.storage.postgresql is not None:  # the store's server: the image's own user, stated by the generator
        server = server_workload(topo)[0]
        stated[server.name] = server
    node_exporter = cluster_node_exporter(topo)  # the generator's, stating its host paths
    if node_exporter is not None:
        stated[node_exporter.name] = node_exporter
    gpus = gpu_exporter(topo)  # the generator's, stating root, its host path and a writable root
    if gpus is not None:
        stated[gpus.name] = gpus
    for obj, pod in pods(profile):
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        w = stated.get(obj["metadata"]["name"])
        run_as = w.security.run_as if w else None
        security = pod["securityContext"]
        assert security["runAsNonRoot"] is not (run_as is not None and run_as.uid == 0), name
        assert security["runAsUser"] == run_as.uid if run_as else security["runAsUser"] >= 10000, name
        assert security["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for container in [*pod.get("initContainers", []), *pod["containers"]]:
            c = container["securityContext"]
            assert c["allowPrivilegeEscalation"] is False and c["capabilities"] == {"drop": ["ALL"]}, name
            writable = bool(w and w.security.writable_root_filesystem)
            assert c["readOnlyRootFilesystem"] is not writable, name
            limits, requests = container["resources"]["limits"], container["resources"]["requests"]
            assert {"cpu", "memory"} <= set(limits) and {"cpu", "memory"} <= set(requests), name
            assert ":" in container["image"].rsplit("/", 1)[-1] and not container["image"].endswith(":latest")
            if obj["kind"] not in ("Job", "CronJob"):
                assert "livenessProbe" in container and "readinessProbe" in container, name
        volumes = {key for v in pod.get("volumes", []) for key in v if key != "name"}
        host_paths = [v.host_path for v in w.volumes if v.host_path] if w else []
        exemption = obj["metadata"].get("annotations", {}).get("imageflow.io/pod-security-exemption", "")
        prometheus = topo.observability.prometheus
        if obj["metadata"]["name"] == "otel-agent":
            assert exemption.startswith("hostPath")
            assert pod["automountServiceAccountToken"] is True
        elif prometheus is not None and obj["metadata"]["name"] == prometheus.name:  # its discovery reads pods
            assert volumes <= ALLOWED_VOLUMES and not exemption, name
            assert pod["automountServiceAccountToken"] is True and pod["serviceAccountName"] == prometheus.name
        elif prometheus is not None and obj["metadata"]["name"] == getattr(prometheus.kube_state_metrics, "name", ""):
            assert volumes <= ALLOWED_VOLUMES and not exemption, name  # it reads the objects it reports
            assert pod["automountServiceAccountToken"] is True and pod["serviceAccountName"] == obj["metadata"]["name"]
        else:
            assert volumes <= ALLOWED_VOLUMES | ({"hostPath"} if host_paths else set()), name
            assert all(f"hostPath {h.path}: {h.reason}" in exemption for h in host_paths), name
            assert bool(exemption) is bool(host_paths), name
            assert pod["automountServiceAccountToken"] is False, name


def test_only_the_namespaces_that_say_why_are_exempt() -> None:
    """restricted everywhere but where a hostPath must be read: the agent's namespace (the
    nodes' logs) and prod's inference namespace (Triton's model repository), each saying why."""
    namespaces = [o for o in objects(validated(PROFILES, "prod")[2]) if o["kind"] == "Namespace"]
    exempt = {}
    for ns in namespaces:
        level = ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"]
        if level != "restricted":
            exempt[ns["metadata"]["name"]] = level
            assert "hostPath" in ns["metadata"]["annotations"]["imageflow.io/pod-security-exemption"]
        else:
            assert "imageflow.io/pod-security-exemption" not in ns["metadata"]["annotations"]
    assert exempt == {"imageflow-observability": "privileged", "imageflow-inference": "privileged"}


def test_disruption_budgets_and_minio_spread() -> None:
    objs = {(o["kind"], o["metadata"]["name"]): o for o in objects(validated(PROFILES, "prod")[2])}
    for name in ("minio", "tempo"):
        pdb = objs[("PodDisruptionBudget", name)]
        assert pdb["spec"] == {"maxUnavailable": 1, "selector": {"matchLabels": {"app": name}}}
    affinity = objs[("StatefulSet", "minio")]["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    term = affinity["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"] == {"matchLabels": {"app": "minio"}}


def test_credentials_are_files_from_a_secret_never_values() -> None:
    objs = {(o["kind"], o["metadata"]["name"]): o for o in objects(validated(PROFILES, "prod")[2])}
    for key in (("StatefulSet", "minio"), ("Job", "minio-buckets")):
        pod = objs[key]["spec"]["template"]["spec"]
        assert {"name": "credentials", "secret": {"secretName": "minio-credentials", "defaultMode": 0o440}} in pod[
            "volumes"
        ]
        assert "secretKeyRef" not in json.dumps(pod)
    env = objs[("StatefulSet", "minio")]["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env[:2] == [
        {"name": "MINIO_ROOT_USER_FILE", "value": "/run/secrets/minio/rootUser"},
        {"name": "MINIO_ROOT_PASSWORD_FILE", "value": "/run/secrets/minio/rootPassword"},
    ]


def checkov(target: Path, frameworks: str) -> dict:
    skips = ",".join(s["id"] for s in SKIPS)
    proc = subprocess.run(
        [
            gates.find("checkov"),
            "-d",
            str(target),
            "--framework",
            frameworks,
            "--skip-download",
            "--skip-check",
            skips,
            "-o",
            "json",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        env=_env(),
    )
    reports = json.loads(proc.stdout or "[]")
    return {r["check_type"]: r for r in (reports if isinstance(reports, list) else [reports]) if "check_type" in r}


def _env() -> dict:
    import os

    return {**os.environ, "PATH": f"{os.environ.get('IMAGEFLOW_TOOLS', '')}{os.pathsep}{os.environ['PATH']}"}


def failed(reports: dict) -> list[str]:
    return [
        f"{c['check_id']} {c['resource']} {c['file_path']}"
        for r in reports.values()
        for c in r["results"]["failed_checks"]
    ]


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_checkov_finds_nothing_outside_the_skip_list(profile: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    write(out, profile, build(PROFILES, profile, CRDS).files)
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    _, built = gates.kustomize_build(out, f"kustomize/overlays/{profile}")
    _, chart = gates.helm_template(out, f"helm/{profile}", f"helm/{profile}/values.yaml")
    (manifests / "overlay.yaml").write_text(built)
    (manifests / "chart.yaml").write_text(chart)
    reports = checkov(manifests, "kubernetes")
    assert reports["kubernetes"]["summary"]["passed"] > 500
    assert failed(reports) == []
    assert failed(checkov(out, "helm,kustomize")) == []


def test_checkov_would_catch_a_new_failure(tmp_path: Path) -> None:
    bad = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "n"},
        "spec": {"containers": [{"name": "c", "image": "nginx:1.27.3", "securityContext": {"privileged": True}}]},
    }
    (tmp_path / "pod.yaml").write_text(yaml.safe_dump(bad))
    assert any(f.startswith("CKV_K8S_16 ") for f in failed(checkov(tmp_path, "kubernetes")))


def test_every_skip_has_a_reason() -> None:
    assert SKIPS and all(s["id"].startswith("CKV_") and len(s["reason"]) > 40 for s in SKIPS)
