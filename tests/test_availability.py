"""`availability`: a workload that must survive the loss of a node is refused a placement that
cannot, spread one pod per node, and counted with one node gone; and the generated README lists
each node's single points of failure and where a drain of it stops (test_simulate.py holds
these lists to what a simulated cluster does)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from conftest import CRDS, PROFILES
from imageflow_gen.availability import impacts
from imageflow_gen.pipeline import build, capacity_report, validated
from test_capacity import child, failure

NODE_LOSS = {"survives": "node-loss"}


def _deployment(result: Any, name: str) -> dict[str, Any]:
    """The Deployment as prod's overlay patches it (the base is the base profile's)."""
    return next(
        o
        for path, o in result.objects
        if path.startswith("kustomize/overlays/prod/") and o["kind"] == "Deployment" and o["metadata"]["name"] == name
    )


def test_prod_spreads_what_must_survive_and_says_why_the_rest_cannot() -> None:
    result = build(PROFILES, "prod", CRDS)
    spread = _deployment(result, "backend-api")["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert spread == [
        {
            "labelSelector": {"matchLabels": {"app": "backend-api"}},
            "maxSkew": 1,
            "nodeAffinityPolicy": "Honor",
            "nodeTaintsPolicy": "Honor",
            "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "DoNotSchedule",
        }
    ]
    filter_ = next(o for p, o in result.objects if p.endswith("/deployment-filter.yaml") and "overlays" not in p)
    assert "topologySpreadConstraints" not in filter_["spec"]["template"]["spec"]
    # Every processing service of prod says what it survives.
    assert all(s.availability is not None for s in result.topology.processing.services)
    readme = result.files["docs/prod/README.md"]
    assert (
        "  - Deployment `imageflow-processing/ai-detection`: no other node may run it: node-type=gpu-enabled "
        "(k3s-worker-02). Accepted: the seed has one GPU node (k3s-worker-02)\n" in readme
    )
    assert "- **k3s-master-01**: the cluster's only server: the API server, scheduler and controllers stop" in readme
    assert "Must keep serving through the loss of any one node" in readme and "`backend-api`, `web-ui`" in readme


def test_each_prod_nodes_impact() -> None:
    plan = validated(PROFILES, "prod")[2]
    found = {i.node: ({d.name for d in i.loss}, {b[2] for b in i.blocks}, bool(i.server)) for i in impacts(plan)}
    cpu = {"grpc-gateway", "resize-blue", "resize-green", "filter", "filter-canary", "camera-streams", "evaluator"}
    monitoring = {"prometheus", "kube-state-metrics", "grafana", "blackbox-exporter"}
    cpu |= monitoring  # prod places them on the cpu-intensive node
    assert found == {
        "k3s-master-01": (set(), set(), True),
        # the canary's, the camera server's and the monitoring's one pods have no budget
        "k3s-worker-01": (
            cpu,
            cpu - {"filter-canary", "camera-streams"} - monitoring,
            False,
        ),
        "k3s-worker-02": ({"ai-detection", "triton"}, set(), False),
        "k3s-worker-03": ({"minio", "postgresql"}, {"minio"}, False),  # PostgreSQL: one replica, no budget
    }


def test_one_replica_cannot_survive_a_node_loss(tmp_path: Path) -> None:
    profiles = child(tmp_path, "one", {"edge": {"web_ui": {"replicas": 1, "availability": NODE_LOSS}}})
    message = failure(profiles, "one")
    assert "one.yaml:" in message and "edge.web_ui.availability" in message
    assert (
        "Deployment web-ui must survive the loss of a node (availability: node-loss), but it has 1 replica" in message
    )


def test_a_service_only_one_node_may_run_cannot_survive_its_loss(tmp_path: Path) -> None:
    profiles = child(
        tmp_path,
        "pinned",
        {
            "processing": {
                "services": [
                    {
                        "name": "sharpen",
                        "image": "ghcr.io/imageflowcanvas/sharpen:1.0.0",
                        "replicas": 2,
                        "resources": {
                            "requests": {"cpu": "100m", "memory": "128Mi"},
                            "limits": {"cpu": "1", "memory": "256Mi"},
                        },
                        "node_type": "cpu-intensive",
                        "availability": NODE_LOSS,
                    }
                ]
            }
        },
    )
    message = failure(profiles, "pinned")
    assert "processing.services[4].availability" in message
    assert (
        "Deployment sharpen must survive the loss of a node (availability: node-loss), but only "
        "k3s-worker-01 may run it (node-type=cpu-intensive (k3s-worker-01))" in message
    )


def test_capacity_counts_the_nodes_left_after_a_loss(tmp_path: Path) -> None:
    heavy = {"requests": {"cpu": "3", "memory": "256Mi"}, "limits": {"cpu": "3", "memory": "512Mi"}}
    profiles = child(
        tmp_path,
        "heavy",
        {"edge": {"backend_api": {"resources": heavy, "availability": NODE_LOSS}}},
    )
    message = failure(profiles, "heavy")
    assert (
        "Deployment backend-api must survive the loss of a node (availability: node-loss), but once "
        "k3s-worker-01 is lost the workloads that may only run on k3s-master-01, k3s-worker-03 request" in message
    )


def test_nothing_requires_a_reason_it_cannot_give(tmp_path: Path) -> None:
    profiles = child(tmp_path, "noreason", {"edge": {"web_ui": {"availability": {"survives": "nothing"}}}})
    message = failure(profiles, "noreason")
    assert "edge.web_ui.availability" in message and "reason" in message


def test_the_capacity_table_has_the_n_1_rows_of_what_must_survive() -> None:
    """Worked by hand from prod: backend-api and web-ui may run on the three untainted nodes. With
    one gone, what may run on the other two moves there (the OTel agent counts on those two);
    what may only run on the lost node (the CPU services, camera-streams and the evaluator on
    k3s-worker-01, MinIO and PostgreSQL on k3s-worker-03) stops instead. The application's
    workloads add 1 CPU on k3s-worker-01 (camera-streams 500m, evaluator 2 x 250m) and 500m on
    k3s-worker-03 (PostgreSQL) to the seed's 4.5, 2.55 and 3.5; Prometheus 500m, Grafana 100m,
    kube-state-metrics 50m and the blackbox prober 20m on k3s-worker-01; the node exporters 20m
    on each of the two nodes."""
    report = capacity_report(PROFILES, "prod")[1]
    rows = {r.name: (r.requested["cpu"], r.capacity["cpu"]) for r in report.rows if r.scope == "n-1"}
    assert rows == {
        "k3s-worker-01, k3s-worker-03 (without k3s-master-01)": (Decimal("6.71"), 12),
        "k3s-master-01, k3s-worker-03 (without k3s-worker-01)": (Decimal("3.09"), 8),
        "k3s-master-01, k3s-worker-01 (without k3s-worker-03)": (Decimal("5.21"), 12),
    }
