"""`simulate`: each profile deployed to a real control plane (kube-apiserver, controller-manager,
scheduler v1.28.9) over kwok's fake nodes shaped like the profile's.

Every profile becomes ready; objects broken the ways dry runs and schemas accept are reported
with the scheduler's or a controller's own reason; a drill per prod node takes down exactly what
the generated README's single points of failure say; a drain stops where the README says; and
no process a simulation started survives it.
"""

from __future__ import annotations

import copy
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import CRDS, PROFILES
from imageflow_gen.availability import impacts
from imageflow_gen.pipeline import build
from imageflow_gen.resources import upstream_crds
from imageflow_gen.simulate import Drill, Outcome, Simulation, SimulationFaltered, run
from imageflow_gen.simulate.cluster import BINARIES, NODE_GRACE, SimulatedCluster
from imageflow_gen.simulate.observe import Observation
from imageflow_gen.validate import tools as gates
from imageflow_gen.writing import write


def _binaries() -> dict[str, str]:
    found = {name: gates.find(name) for name in BINARIES}
    missing = [name for name, path in found.items() if path is None]
    assert not missing, f"run `make tools` first; missing: {', '.join(missing)}"
    return {k: v for k, v in found.items() if v}


def _docs(profile: str, tmp_path: Path) -> tuple[Any, list[dict[str, Any]]]:
    result = build(PROFILES, profile, CRDS)
    write(tmp_path, profile, result.files)
    built, text = gates.kustomize_build(tmp_path, f"kustomize/overlays/{profile}")
    assert not built.errors
    return result, [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]


def _simulate(
    profile: str, tmp_path: Path, mutate: Any = None, drill: Drill | None = None, at_once: bool = False
) -> Outcome:
    result, docs = _docs(profile, tmp_path)
    if mutate is not None:
        mutate(docs)
    outcome = run(
        _binaries(),
        upstream_crds(),
        result.plan,
        docs,
        drill,
        at_once=at_once,
    )
    for pid in outcome.pids:  # everything it started is stopped and reaped
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    return outcome


def _find(observations: list[Observation], kind: str, name: str) -> Observation:
    return next(o for o in observations if o.kind == kind and o.name == name)


@pytest.mark.parametrize("profile", ["dev", "staging", "prod"])
def test_every_profile_becomes_ready(profile: str, tmp_path: Path) -> None:
    outcome = _simulate(profile, tmp_path)
    assert outcome.refused == []
    assert [(o.label, o.summary, o.reasons) for o in outcome.failures] == []
    assert outcome.ok
    kinds = {o.kind for o in outcome.observations}
    assert {"Deployment", "StatefulSet", "DaemonSet", "Job", "PersistentVolumeClaim", "Service"} <= kinds
    if profile == "prod":
        placed = {o.name: o.nodes for o in outcome.observations if o.nodes}
        assert set(placed["grpc-gateway"]) == {"k3s-worker-01"}
        assert placed["ai-detection"] == ("k3s-worker-02",)
        assert set(placed["minio"]) == {"k3s-worker-03"}
        # availability: node-loss spreads the replicas one per node.
        assert len(set(placed["backend-api"])) == 3 and len(set(placed["web-ui"])) == 2
        for name in ("resize-blue", "resize-green", "filter"):  # the autoscalers' minimum reached
            assert _find(outcome.observations, "HorizontalPodAutoscaler", name).summary.startswith("2 replicas")
        tempo = _find(outcome.observations, "PersistentVolumeClaim", "data-tempo-0")
        assert "(local-path)" in tempo.summary and tempo.ok


def test_a_plain_kubectl_apply_of_the_overlay_converges_without_a_failed_create(tmp_path: Path) -> None:
    """Without Argo CD's waves: everything at once, in the order the built overlay lists it."""
    outcome = _simulate("prod", tmp_path, at_once=True)
    assert outcome.failed_creates == []
    assert outcome.ok, [(o.label, o.reasons) for o in outcome.failures]


def test_a_runtime_class_applied_after_its_pods_is_a_failed_create(tmp_path: Path) -> None:
    """The order matters, and the simulation sees it: the GPU pods refused until their class exists."""

    def runtime_class_last(docs: list[dict[str, Any]]) -> None:
        last = [d for d in docs if d["kind"] == "RuntimeClass"]
        docs[:] = [d for d in docs if d["kind"] != "RuntimeClass"] + last

    outcome = _simulate("prod", tmp_path, runtime_class_last, at_once=True)
    assert any(
        c.startswith("ReplicaSet imageflow-inference/triton-") and 'RuntimeClass "nvidia" not found' in c
        for c in outcome.failed_creates
    ), outcome.failed_creates
    assert not outcome.ok


def _pod(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    obj = next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)
    return obj["spec"]["template"]["spec"]


def _replicas(docs: list[dict[str, Any]]) -> None:
    """GPU over-subscription: two pods of one GPU each, on the one GPU node that has one."""
    next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "triton")["spec"]["replicas"] = 2


def _untolerated(docs: list[dict[str, Any]]) -> None:
    """An untolerated taint: grpc-gateway sent to the GPU node without tolerating its taint."""
    _pod(docs, "Deployment", "grpc-gateway")["nodeSelector"] = {"node-type": "gpu-enabled"}


def _no_endpoints(docs: list[dict[str, Any]]) -> None:
    """A Service whose selector matches no pod."""
    service = next(d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == "web-ui")
    service["spec"]["selector"] = {"app": "web-iu"}


def _root(docs: list[dict[str, Any]]) -> None:
    """Pod Security (restricted) refusing the real pods: backend-api running as root."""
    security = _pod(docs, "Deployment", "backend-api")["securityContext"]
    security["runAsNonRoot"] = False
    security["runAsUser"] = 0


def _small_volume(docs: list[dict[str, Any]]) -> None:
    """A volume smaller than its claim: MinIO's first drive."""
    volume = next(d for d in docs if d["kind"] == "PersistentVolume" and d["metadata"]["name"] == "minio-data-01")
    volume["spec"]["capacity"]["storage"] = "100Gi"


# Each breakage, accepted by the dry run and the schemas: (the change, the object, what the
# component that refused it says, everything that fails with it: workloads, Services, claims).
BREAKAGES = {
    "gpu-over-subscribed": (
        _replicas,
        ("Deployment", "triton"),
        r"0/4 nodes are available: .*1 Insufficient nvidia\.com/gpu",
        {("Deployment", "triton")},  # one of its two pods runs: its Service has an endpoint
    ),
    "untolerated-taint": (
        _untolerated,
        ("Deployment", "grpc-gateway"),
        r"untolerated taint \{nvidia\.com/gpu: true\}",
        {("Deployment", "grpc-gateway"), ("Service", "grpc-gateway")},
    ),
    "service-without-endpoints": (
        _no_endpoints,
        ("Service", "web-ui"),
        r"its selector app=web-iu matches no ready pod",
        {("Service", "web-ui")},
    ),
    "pod-security": (
        _root,
        ("Deployment", "backend-api"),
        r'FailedCreate: .*violates PodSecurity "restricted:v1\.28": runAsNonRoot != true',
        {("Deployment", "backend-api"), ("Service", "backend-api")},
    ),
    "volume-smaller-than-claim": (
        _small_volume,
        ("StatefulSet", "minio"),
        r"didn't find available persistent volumes to bind",
        {("StatefulSet", "minio"), ("PersistentVolumeClaim", "data-minio-0")},
    ),
}


@pytest.mark.parametrize("case", list(BREAKAGES))
def test_a_breakage_fails_with_the_components_reason(case: str, tmp_path: Path) -> None:
    mutate, obj, reason, failing = BREAKAGES[case]
    outcome = _simulate("prod", tmp_path, mutate)
    assert not outcome.ok
    found = _find(outcome.observations, *obj)
    assert not found.ok
    assert any(re.search(reason, r) for r in found.reasons), found.reasons
    # Nothing else is blamed: only the object and what follows from it.
    kinds = ("Deployment", "StatefulSet", "Service", "PersistentVolumeClaim")
    assert {(o.kind, o.name) for o in outcome.failures if o.kind in kinds} == failing


def _readme_losses(profile: str, tmp_path: Path) -> dict[str, set[str]]:
    """node -> 'Kind namespace/name' lines of the generated README's single points of failure."""
    result = build(PROFILES, profile, CRDS)
    text = result.files[f"docs/{profile}/README.md"]
    section = text.split("## Single points of failure", 1)[1].split("\n## ", 1)[0]
    losses: dict[str, set[str]] = {}
    node = None
    for line in section.splitlines():
        if match := re.match(r"- \*\*([^*]+)\*\*(?:: (\w+) `([^`]+)`)?", line):
            node = match.group(1)
            losses.setdefault(node, set())
            if match.group(2):  # "- **the node it runs on**: StatefulSet `ns/name`: ..."
                losses[node].add(f"{match.group(2)} {match.group(3)}")
        elif node and (match := re.match(r"  - (\w+) `([^`]+)`", line)):
            losses[node].add(f"{match.group(1)} {match.group(2)}")
    return losses


@pytest.mark.parametrize("node", ["k3s-master-01", "k3s-worker-01", "k3s-worker-02", "k3s-worker-03"])
def test_losing_a_prod_node_takes_down_what_the_readme_lists(node: str, tmp_path: Path) -> None:
    outcome = _simulate("prod", tmp_path, drill=Drill("fail", node))
    listed = _readme_losses("prod", tmp_path)
    lost = {f"{o.kind} {o.namespace}/{o.name}" for o in outcome.lost}
    # Tempo is listed under "the node it runs on": lost with this node when it ran here.
    tempo = _find(outcome.observations, "StatefulSet", "tempo")
    expected = listed[node] | (listed["the node it runs on"] if node in tempo.nodes else set())
    assert lost == expected
    assert outcome.unexpected == ([], [])
    assert outcome.ok
    if node == "k3s-worker-01":  # the scheduler says why they cannot move
        filter_ = _find(outcome.after, "Deployment", "filter")
        assert any("didn't match Pod's node affinity/selector" in r for r in filter_.reasons)
    if node == "k3s-worker-03":  # a StatefulSet's pods stay on the lost node
        minio = _find(outcome.after, "StatefulSet", "minio")
        assert any("being deleted on k3s-worker-03, which is lost" in r for r in minio.reasons)


def test_draining_the_storage_node_stops_at_minios_budget(tmp_path: Path) -> None:
    outcome = _simulate("prod", tmp_path, drill=Drill("drain", "k3s-worker-03"))
    assert {workload for workload, _ in outcome.blocked} == {("StatefulSet", "imageflow-storage", "minio")}
    assert all("disruption budget" in why for _, why in outcome.blocked)
    assert outcome.unexpected == ([], [])
    minio = _find(outcome.after, "StatefulSet", "minio")
    assert minio.summary.startswith("3/4 ready")


def test_a_drill_that_differs_from_the_readme_fails(tmp_path: Path) -> None:
    """The comparison can fail: a prediction that names a workload the drill does not take down."""
    outcome = _simulate("dev", tmp_path)
    result = build(PROFILES, "dev", CRDS)
    node = result.topology.cluster.nodes[0].name
    outcome.drill = Drill("fail", node)
    outcome.after = [copy.copy(o) for o in outcome.observations]
    predicted = next(i for i in impacts(result.plan) if i.node == node)
    from imageflow_gen.availability import Down

    outcome.predicted = type(predicted)(node, "", (Down("Deployment", "imageflow-web", "web-ui", "test"),), ())
    assert outcome.unexpected == ([], ["Deployment imageflow-web/web-ui"])
    assert not outcome.ok


def test_cli_simulate_reports_and_exits_by_readiness(cli: Any) -> None:
    result = cli("simulate", "--profile", "dev", env={"IMAGEFLOW_TOOLS": os.environ.get("IMAGEFLOW_TOOLS", "")})
    assert result.code == 0, result.stderr
    assert "deployed: all ready" in result.stdout and result.stdout.rstrip().endswith("result: ok")
    assert re.search(r"ok   Deployment imageflow-web/web-ui +\d+/\d+ ready on ", result.stdout)


def test_cli_simulate_refuses_an_unknown_node(cli: Any) -> None:
    result = cli("simulate", "--profile", "prod", "--fail-node", "k3s-worker-09")
    assert result.code == 2
    assert "'k3s-worker-09' is not a node of profile prod: k3s-master-01, k3s-worker-01" in result.stderr
    result = cli("simulate", "--profile", "prod", "--fail-node", "a", "--drain", "b")
    assert result.code == 2 and "give --fail-node or --drain, not both" in result.stderr


def _children(pid: int) -> dict[int, str]:
    """pid -> command line of the processes whose parent is `pid`."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                child = int(stat.parent.name)
                found[child] = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError, ValueError):
            continue
    return found


def test_sigterm_stops_every_process_a_simulation_started() -> None:
    env = {**os.environ, "IMAGEFLOW_TOOLS": os.environ.get("IMAGEFLOW_TOOLS", "")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "imageflow_gen", "simulate", "--profile", "dev"],
        cwd=PROFILES.parent,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        started: dict[int, str] = {}
        while time.monotonic() < deadline and not any("kwok" in c for c in started.values()):
            started = _children(proc.pid)
            time.sleep(0.2)
        assert any("kwok" in c for c in started.values()), started
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
    for pid in started:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in (Path(f"/proc/{pid}/status").read_text().lower())


def test_a_kubelet_that_stalls_is_the_simulations_fault_not_the_outputs(tmp_path: Path) -> None:
    """kwok paused past the node grace period (a machine too busy): every node is marked not ready
    and its pods with it. The run is called faltered, never a verdict on the output; a component
    that exits is too."""
    result, docs = _docs("dev", tmp_path)
    with SimulatedCluster(_binaries(), upstream_crds()) as cluster:
        sim = Simulation(cluster, set(result.plan.topology.storage.cluster_classes))
        sim.setup(result.plan.nodes)
        sim.prerequisite_namespaces(docs)
        sim.deploy(docs)
        assert sim.faltered() == []
        sim.check()
        kwok = cluster.pid("kwok")
        os.kill(kwok, signal.SIGSTOP)
        try:
            deadline = time.monotonic() + NODE_GRACE + 60
            while time.monotonic() < deadline and len(sim.faltered()) < len(result.plan.nodes):
                time.sleep(1)
        finally:
            os.kill(kwok, signal.SIGCONT)
        names = [n.node.name for n in result.plan.nodes]
        assert sim.faltered() == [
            f"node {name} missed its heartbeat though the simulation did not stop it (the machine is too busy)"
            for name in sorted(names)
        ]
        os.kill(kwok, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not cluster.exited():
            time.sleep(0.2)
        with pytest.raises(SimulationFaltered) as raised:
            sim.check()
        message = raised.value.problems[0].message
        assert message.startswith("faltered: kwok exited:")
        assert f"node {sorted(names)[0]} missed its heartbeat" in message


def test_a_faltered_run_is_started_again_then_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    import imageflow_gen.simulate as simulate

    calls: list[int] = []
    said: list[str] = []

    def falters_once(*args: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise SimulationFaltered("faltered: kwok exited:\nlast words")
        return "outcome"

    monkeypatch.setattr(simulate, "_attempt", falters_once)
    assert run({}, [], None, [], progress=said.append) == "outcome"  # type: ignore[arg-type]
    assert said == ["the simulated cluster faltered: kwok exited:; starting again"]
    assert len(calls) == 2


_ALWAYS_FALTERS = """
import sys
import imageflow_gen.simulate as simulate
from imageflow_gen.simulate import SimulationFaltered
calls = []
def always(*args):
    calls.append(1)
    print(f"attempt {len(calls)}", file=sys.stderr)
    raise SimulationFaltered("faltered: node k3s-worker-01 missed its heartbeat")
simulate._attempt = always
from imageflow_gen.cli import main
sys.argv = ["imageflow-gen", *sys.argv[1:]]
main()
"""


def test_a_simulation_that_keeps_faltering_exits_2_blaming_itself() -> None:
    from conftest import REPO

    proc = subprocess.run(
        [sys.executable, "-c", _ALWAYS_FALTERS, "simulate", "--profile", "dev"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_COLOR": "1", "IMAGEFLOW_TOOLS": os.environ.get("IMAGEFLOW_TOOLS", "")},
    )
    assert proc.returncode == 2, proc.stderr
    assert "attempt 2" in proc.stderr and "attempt 3" not in proc.stderr
    assert "simulated cluster faltered: node k3s-worker-01 missed its heartbeat\n(in all 2 runs; " in proc.stderr
    assert "Traceback" not in proc.stderr and "result:" not in proc.stdout
