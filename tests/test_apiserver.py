"""A real kube-apiserver (v1.28.9, what K3s v1.28.9+k3s1 runs; built by `make tools`) as the
oracle: every profile's overlay and chart pass its server-side dry run, with Pod Security
enforced as rendered and no warning; objects broken one way each are refused by it, and the
table says which of them the in-process gate catches too. Whatever a profile could cause is
refused earlier, by the model, at the profile's line."""

from __future__ import annotations

import contextlib
import copy
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import CRDS, PROFILES, REPO
from imageflow_gen.pipeline import build
from imageflow_gen.resources import upstream_crds
from imageflow_gen.validate import schema_problems
from imageflow_gen.validate import tools as gates
from imageflow_gen.validate.apiserver import ApiClient, LocalApiServer, dry_run
from imageflow_gen.validate.kubernetes import SchemaStore
from imageflow_gen.writing import write

PROFILE_NAMES = ["dev", "staging", "prod"]
BINARIES = ("etcd", "kube-apiserver", "kube-pki")


@pytest.fixture(scope="module")
def server() -> Iterator[LocalApiServer]:
    binaries = {name: gates.find(name) for name in BINARIES}
    missing = [name for name, path in binaries.items() if path is None]
    assert not missing, f"run `make tools` first; missing: {', '.join(missing)}"
    crds = upstream_crds()
    with LocalApiServer({k: v for k, v in binaries.items() if v}, crds) as running:
        yield running
    for pid in running.pids:  # stopped, and reaped
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def _built(profile: str, tmp_path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(the overlay's objects as kubectl kustomize builds them, the chart's as helm renders them)."""
    result = build(PROFILES, profile, CRDS)
    write(tmp_path, profile, result.files)
    _, overlay = gates.kustomize_build(tmp_path, f"kustomize/overlays/{profile}")
    _, chart = gates.helm_template(tmp_path, f"helm/{profile}", f"helm/{profile}/values.yaml")
    docs = [[d for d in yaml.safe_load_all(text) if isinstance(d, dict)] for text in (overlay, chart)]
    assert docs[0] and docs[1]
    return docs[0], docs[1]


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_every_profile_passes_the_server_dry_run_without_a_warning(
    server: LocalApiServer, profile: str, tmp_path: Path
) -> None:
    overlay, chart = _built(profile, tmp_path)
    for docs in (overlay, chart):
        findings = dry_run(server.client, docs, bootstrap=True)
        assert [(f.obj["kind"], f.obj["metadata"]["name"], f.message) for f in findings] == []
    assert any(d["kind"] == "Pod" for d in chart)  # the helm test pods: Pod Security enforced on them
    pod_labels = [d["spec"]["template"]["metadata"]["labels"] for d in overlay if d["kind"] == "Deployment"]
    strategies = {labels.get("track") or labels.get("color") or "rolling" for labels in pod_labels}
    if profile == "prod":
        assert {"stable", "canary", "blue", "green", "rolling"} <= strategies, strategies


# ---- objects broken one way each ------------------------------------------------------------


def _first(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    return next(d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name))


def _container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return _first(docs, "Deployment", "resize-blue")["spec"]["template"]["spec"]["containers"][0]


def _set(path: str, value: Any, kind: str, name: str | None = None) -> Callable[[list[dict[str, Any]]], None]:
    def mutate(docs: list[dict[str, Any]]) -> None:
        target: Any = _first(docs, kind, name)
        keys = path.split(".")
        for key in keys[:-1]:
            target = target[int(key)] if key.isdigit() else target.setdefault(key, {})
        target[keys[-1]] = value

    return mutate


def _duplicate_container(docs: list[dict[str, Any]]) -> None:
    spec = _first(docs, "Deployment", "resize-blue")["spec"]["template"]["spec"]
    spec["containers"].append(copy.deepcopy(spec["containers"][0]))


def _value_and_from(docs: list[dict[str, Any]]) -> None:
    _container(docs)["env"][0]["valueFrom"] = {"fieldRef": {"fieldPath": "metadata.name"}}


def _two_handlers(docs: list[dict[str, Any]]) -> None:
    _container(docs)["livenessProbe"]["tcpSocket"] = {"port": 8080}


def _cpu_above_limit(docs: list[dict[str, Any]]) -> None:
    _container(docs)["resources"]["requests"]["cpu"] = "8"


def _root_test_pod(docs: list[dict[str, Any]]) -> None:
    pod = _first(docs, "Pod")
    pod["spec"]["securityContext"]["runAsNonRoot"] = False
    pod["spec"]["securityContext"]["runAsUser"] = 0


# (id, what, mutate (applied to the chart's objects), whether the in-process gate catches it)
MUTATIONS: list[tuple[str, Callable[[list[dict[str, Any]]], None], bool]] = [
    ("selector-not-matching", _set("spec.selector.matchLabels.app", "other", "Deployment", "resize-blue"), False),
    ("cpu-request-above-limit", _cpu_above_limit, False),
    ("duplicate-container-names", _duplicate_container, False),
    ("env-value-and-valueFrom", _value_and_from, False),
    ("probe-with-two-handlers", _two_handlers, False),
    (
        "maxSurge-and-maxUnavailable-0",
        _set(
            "spec.strategy",
            {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}},
            "Deployment",
            "resize-blue",
        ),
        False,
    ),
    ("uppercase-name", _set("metadata.name", "Resize-Blue", "Deployment", "resize-blue"), False),
    (
        "port-name-over-15",
        _set("spec.template.spec.containers.0.ports.0.name", "grpc-port-of-resize", "Deployment", "resize-blue"),
        False,
    ),
    ("label-value-over-63", _set("metadata.labels.app", "x" * 64, "Service", "resize"), False),
    ("nodePort-on-ClusterIP", _set("spec.ports.0.nodePort", 30080, "Service", "filter"), False),
    ("hpa-min-above-max", _set("spec.minReplicas", 9, "HorizontalPodAutoscaler"), False),
    ("pdb-both-fields", _set("spec.minAvailable", 1, "PodDisruptionBudget", "minio"), False),
    (
        "bad-cidr",
        _set("spec.ingress.0.from.0.ipBlock.cidr", "10.0.0.300/32", "NetworkPolicy", "allow-vms-to-minio-ingress"),
        False,
    ),
    ("istio-cel-timeout", _set("spec.http.0.timeout", "1h2x", "VirtualService", "imageflow-api"), False),
    ("unknown-field", _set("spec.replicaz", 2, "Deployment", "resize-blue"), True),
    ("pod-security-root-test-pod", _root_test_pod, False),
]


@pytest.fixture(scope="module")
def prod_chart(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    return _built("prod", tmp_path_factory.mktemp("prod"))[1]


@pytest.mark.parametrize(("name", "mutate", "in_process"), MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_the_server_refuses_each_broken_object(
    server: LocalApiServer,
    prod_chart: list[dict[str, Any]],
    name: str,
    mutate: Callable[[list[dict[str, Any]]], None],
    in_process: bool,
) -> None:
    docs = copy.deepcopy(prod_chart)
    before = {id(d): yaml.safe_dump(d) for d in docs}
    mutate(docs)
    changed = [d for d in docs if before.get(id(d)) != yaml.safe_dump(d)]
    assert len(changed) == 1, name
    refused = [f for f in dry_run(server.client, changed, bootstrap=True) if not f.warning]
    assert refused, f"{name}: the server accepted it"
    store = SchemaStore("1.28", CRDS)
    caught = bool(schema_problems(store, [("x.yaml", changed[0])]))
    assert caught == in_process, f"{name}: the in-process gate {'catches' if caught else 'misses'} it"


def test_the_mutations_cover_the_breakages_the_issue_lists() -> None:
    assert len([m for m in MUTATIONS if m[0] != "unknown-field"]) >= 15


# ---- the CLI ---------------------------------------------------------------------------------


def test_validate_with_a_local_api_server_reports_what_it_accepted() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "imageflow_gen", "validate", "--profile", "prod", "--api-server", "local"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    overlay = next(line for line in lines if line.startswith("API server dry-run: ok ("))
    chart = next(line for line in lines if line.startswith("API server dry-run (chart): ok ("))
    accepted, total = overlay.split("(")[1].split(" objects")[0].split(" of ")
    assert accepted == total and int(total) > 100, overlay
    assert "objects accepted" in chart


def test_validate_refuses_an_unknown_api_server_choice() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "imageflow_gen", "validate", "--profile", "dev", "--api-server", "remote"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "'remote' is not local or kubeconfig[:CONTEXT]" in proc.stderr


def test_kubeconfig_mode_dry_runs_through_kubectl_proxy(server: LocalApiServer, tmp_path: Path) -> None:
    """The user's-cluster mode, pointed at the local server by a kubeconfig: only dry runs."""
    client: ApiClient = server.client
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {"name": "local", "cluster": {"server": client.base, "certificate-authority": client.cafile}}
                ],
                "users": [{"name": "local", "user": {"token": client.token}}],
                "contexts": [{"name": "test", "context": {"cluster": "local", "user": "local"}}],
                "current-context": "test",
            }
        )
    )
    # A cluster with the platform's namespaces, as after a first deployment.
    docs, _ = _built("dev", tmp_path / "out")
    dry_run(client, docs, bootstrap=True)
    before = client.request("GET", "/api/v1/namespaces/imageflow-processing/services")[1]["items"]
    proc = subprocess.run(
        [sys.executable, "-m", "imageflow_gen", "validate", "--profile", "dev", "--api-server", "kubeconfig:test"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1", "KUBECONFIG": str(kubeconfig)},
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert "API server dry-run: ok (" in proc.stdout
    after = client.request("GET", "/api/v1/namespaces/imageflow-processing/services")[1]["items"]
    assert after == before  # nothing created


def test_kubeconfig_mode_says_which_objects_it_could_not_check(server: LocalApiServer) -> None:
    """On the user's cluster nothing is created: objects of a namespace it lacks are reported
    as not checked (a warning), never as accepted."""
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "not-there"}}
    (finding,) = dry_run(server.client, [obj], bootstrap=False)
    assert finding.warning and finding.message.startswith("not checked: namespace not-there does not exist")
    result = gates.api_dry_run("t", server.client, yaml.safe_dump(obj), "x.yaml", bootstrap=False)
    assert result.errors == [] and result.summary == "0 of 1 objects accepted, 1 not checked"


# ---- what a profile could cause, refused by the model first ------------------------------------


def _service(**fields: Any) -> dict[str, Any]:
    """Profile data for one processing service (merged with the parent's by name)."""
    return {"processing": {"services": [fields]}}


def _resources(request: str, limit: str) -> dict[str, Any]:
    return {"requests": {"cpu": request, "memory": "1Gi"}, "limits": {"cpu": limit, "memory": "1Gi"}}


_PROFILE_LEVEL = [
    # (the server's refusal it prevents, profile data, the key refused, the start of the message)
    (
        "istio-cel-timeout",
        {"network": {"routes": [{"name": "imageflow-api", "retries": {"attempts": 3, "per_try_timeout": "1ms"}}]}},
        "network.routes[0].retries.per_try_timeout",
        "'1ms' is too short: Istio takes durations above 1ms",
    ),
    (
        "istio-cel-timeout",
        {
            "network": {
                "routes": [{"name": "imageflow-api", "fault": {"delay": {"percentage": 1, "fixed_delay": "0s"}}}]
            }
        },
        "network.routes[0].fault.delay.fixed_delay",
        "'0s' is too short",
    ),
    (
        "pv-capacity-zero",
        {"storage": {"minio": {"volumes": {"size": "0"}}}},
        "storage.minio.volumes.size",
        "'0' is no size",
    ),
    (
        "pvc-size-zero",
        {"observability": {"tempo": {"storage_size": 0}}},
        "observability.tempo.storage_size",
        "'0' is no size",
    ),
    (
        "cpu-request-above-limit",
        _service(name="resize", resources=_resources("2", "1")),
        "processing.services[1].resources.requests.cpu",
        "request 2 is above the limit 1",
    ),
    (
        "hpa-min-above-max",
        _service(name="resize", autoscaling={"min_replicas": 5, "max_replicas": 2, "target_cpu_utilization": 70}),
        "processing.services[1].autoscaling.min_replicas",
        "must not exceed max_replicas",
    ),
    (
        "uppercase-name",
        _service(name="Resize", image="ghcr.io/x/y:1", resources=_resources("1", "1")),
        "processing.services[4].name",
        "'Resize' is not",
    ),
    (
        "label-value-over-63",
        {
            "observability": {
                "otel_agent": {"metrics_readers": [{"namespace": "imageflow-monitoring", "pods": {"app": "x" * 64}}]}
            }
        },
        "observability.otel_agent.metrics_readers[0].pods.app",
        "'" + "x" * 64 + "' is 64 characters",
    ),
    ("bad-cidr", {"vms": [{"name": "vm0", "address": "10.0.0.300"}]}, "vms[0].address", "'10.0.0.300' is not"),
]


@pytest.mark.parametrize(
    ("refusal", "data", "key", "message"), _PROFILE_LEVEL, ids=[f"{c[0]}-{c[2]}" for c in _PROFILE_LEVEL]
)
def test_a_profile_cannot_render_what_the_server_would_refuse(
    tmp_path: Path, refusal: str, data: dict[str, Any], key: str, message: str
) -> None:
    from test_hostile import profile_with

    from imageflow_gen.errors import ImageflowError

    assert refusal in {m[0] for m in MUTATIONS} | {"pv-capacity-zero", "pvc-size-zero"}
    with pytest.raises(ImageflowError) as caught:
        build(profile_with(tmp_path, "refused", {"purpose": "x", "extends": "prod", **data}), "refused", CRDS)
    found = [(p.key, p.message) for p in caught.value.problems]
    assert any(k == key and m.startswith(message) for k, m in found), found
    assert all(p.location.file.endswith("refused.yaml") and p.location.line > 0 for p in caught.value.problems)


_BROKEN_BUILD = """
import sys
import imageflow_gen.validate.tools as tools
real = tools.kustomize_build
def broken(root, overlay):
    result, text = real(root, overlay)
    return result, text.replace("maxUnavailable: 1", "maxUnavailable: 1\\n  minAvailable: 1", 1)
tools.kustomize_build = broken
from imageflow_gen.cli import main
sys.argv = ["imageflow-gen", *sys.argv[1:]]
main()
"""


def test_an_object_the_server_refuses_fails_validate_with_a_located_message(server: LocalApiServer) -> None:
    """No profile renders one any more (the model refuses them first): the overlay's build is
    broken after the in-process gates, as a bug in a later stage would break it."""
    proc = subprocess.run(
        [sys.executable, "-c", _BROKEN_BUILD, "validate", "--profile", "dev", "--api-server", "local"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "300"},
        timeout=600,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "API server dry-run: failed" in proc.stdout
    assert (
        "kustomize/overlays/dev/kustomization.yaml PodDisruptionBudget imageflow-observability/tempo: API server: "
        'PodDisruptionBudget.policy "tempo" is invalid: spec: Invalid value:'
    ) in proc.stderr
    assert "minAvailable and maxUnavailable cannot be both set (from dev.yaml#observability.tempo)" in proc.stderr


def test_the_generated_ci_script_dry_runs_on_the_context_it_is_given(server: LocalApiServer, tmp_path: Path) -> None:
    client = server.client
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "l", "cluster": {"server": client.base, "certificate-authority": client.cafile}}],
                "users": [{"name": "l", "user": {"token": client.token}}],
                "contexts": [{"name": "staging-cluster", "context": {"cluster": "l", "user": "l"}}],
            }
        )
    )
    out = tmp_path / "out"
    docs, _ = _built("staging", out)
    dry_run(client, docs, bootstrap=True)  # the namespaces the cluster has (istio-system among them)
    env = {
        **os.environ,
        "PATH": f"{os.environ['IMAGEFLOW_TOOLS']}{os.pathsep}{os.environ['PATH']}",
        "KUBECONFIG": str(kubeconfig),
        "DRY_RUN_CONTEXT": "staging-cluster",
        "K8S_SCHEMA_LOCATION": str(REPO / ".tools/kubernetes-schemas")
        + "/{{.NormalizedKubernetesVersion}}-standalone{{.StrictSuffix}}/{{.ResourceKind}}{{.KindSuffix}}.json",
        "CRD_SCHEMA_LOCATION": str(CRDS[0]) + "/{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json",
    }
    proc = subprocess.run(["sh", "ci/validate.sh"], cwd=out, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    applied = proc.stdout.count("serverside-applied (server dry run)")
    assert applied == len(docs), proc.stdout
    assert client.request("GET", "/apis/apps/v1/namespaces/imageflow-processing/deployments")[1]["items"] == []


def test_the_server_is_built_at_the_version_the_profiles_target() -> None:
    from imageflow_gen.pipeline import validated

    gomod = (REPO / "tools/kube/go.mod").read_text(encoding="utf-8")
    pinned = {line.split()[0]: line.split()[1] for line in gomod.splitlines() if line.startswith("\t")}
    for profile in PROFILE_NAMES + ["base"]:
        version = validated(PROFILES, profile)[1].cluster.version
        assert pinned["k8s.io/kubernetes"] == version.split("+")[0], profile
    replaced = [line.split() for line in gomod.splitlines() if "=>" in line]
    assert len(replaced) == 30 and all(r[0] == r[2] and r[3] == "v0.28.9" for r in replaced), replaced
    assert pinned["go.etcd.io/etcd/server/v3"] == "v3.5.9"
    binary = gates.find("kube-apiserver")
    assert binary is not None
    assert subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.strip() == "Kubernetes v1.28.9"


def _children(pid: int, names: tuple[str, ...]) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)
            comm = fields[0].split("(", 1)[1]
            ppid = int(fields[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid and comm in names:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.parametrize("signum", [2, 15], ids=["ctrl-c", "sigterm"])
def test_an_interrupted_validate_stops_the_servers_it_started(signum: int) -> None:
    import signal
    import time

    proc = subprocess.Popen(
        [sys.executable, "-m", "imageflow_gen", "validate", "--profile", "dev", "--api-server", "local"],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    started: list[int] = []
    try:
        deadline = time.monotonic() + 300
        while len(started) < 2 and time.monotonic() < deadline and proc.poll() is None:
            started = _children(proc.pid, ("etcd", "kube-apiserver"))
            time.sleep(0.1)
        assert len(started) == 2, "the servers did not start"
        proc.send_signal(signum)
        assert proc.wait(timeout=60) != 0
    finally:
        if proc.poll() is None:  # the test failed: leave nothing behind all the same
            proc.kill()
            for pid in started or _children(proc.pid, ("etcd", "kube-apiserver")):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
    for pid in started:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]


def test_without_the_built_server_validate_says_how_to_get_it(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "imageflow_gen", "validate", "--profile", "dev", "--api-server", "local"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "IMAGEFLOW_TOOLS": str(tmp_path), "PATH": f"{gates.find('kubectl')}/..:/usr/bin:/bin"},
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    assert "etcd, kube-apiserver, kube-pki not installed (make tools builds them)" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_kubeconfig_context_that_does_not_exist_is_a_clear_error(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\nclusters: []\nusers: []\ncontexts: []\n")
    proc = subprocess.run(
        [sys.executable, "-m", "imageflow_gen", "validate", "--profile", "dev", "--api-server", "kubeconfig:nope"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "KUBECONFIG": str(kubeconfig)},
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    assert "--api-server kubectl proxy did not start:" in proc.stderr and 'context "nope"' in proc.stderr
    assert "Traceback" not in proc.stderr
