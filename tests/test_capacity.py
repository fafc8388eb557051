"""The capacity check: requests against node groups, volumes against node storage, compose
against its VM; prod passes, and a profile over capacity fails naming the group and workloads."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from conftest import CRDS, PROFILES, run_cli
from imageflow_gen.errors import ImageflowError
from imageflow_gen.pipeline import build, capacity_report
from test_hostile import profile_with


def report_of(profiles: Path, name: str) -> Any:
    return capacity_report(profiles, name)[1]


def child(tmp: Path, name: str, data: dict[str, Any]) -> Path:
    return profile_with(tmp, name, {"purpose": "capacity test", "extends": "prod", **data})


def failure(profiles: Path, name: str) -> str:
    with pytest.raises(ImageflowError) as caught:
        build(profiles, name, CRDS)
    return "\n".join(str(p) for p in caught.value.problems)


def test_prod_passes_with_the_documented_warnings_only() -> None:
    report = report_of(PROFILES, "prod")
    assert report.errors == []
    warnings = sorted(f.message.split(":")[0] if "%" in f.message else f.message[:34] for f in report.warnings)
    assert warnings == [
        "95% of capacity (over 80%)",  # vm0's and vm1's compose limits (docs/seed-deviations.md)
        "98% of capacity (over 80%)",
        "the cluster's nodes declare 24 CPU",
    ]
    # Worked by hand from prod: MinIO 4 x 250m, grpc-gateway 2 x 100m, resize blue and green
    # 2 x 250m each, ai-detection 500m, filter stable 2 x 250m and canary 1 x 250m, backend-api
    # 3 x 250m, web-ui 2 x 50m, the OTel agent 100m on each of 4 nodes, Tempo 500m; the
    # application's workloads: PostgreSQL 500m, Triton 2, camera-streams 500m, evaluator 2 x 250m;
    # monitoring: Prometheus 500m, Grafana 100m, kube-state-metrics 50m, the blackbox prober 20m,
    # the node exporter 20m on each of 4 nodes, the GPU exporter 50m on the GPU node.
    cluster = next(r for r in report.rows if r.scope == "cluster")
    assert cluster.requested["cpu"] == Decimal("9.50") and cluster.capacity["cpu"] == 24
    # MinIO's four 400Gi drives and PostgreSQL's 20Gi local-path claim, on the one node each may use
    storage = next(r for r in report.rows if r.name == "k3s-worker-03")
    assert storage.requested["storage"] == (4 * 400 + 20) * 2**30 and storage.capacity["storage"] == 2 * 2**40
    assert storage.workloads[-1] == "claim data-postgresql-0"


def test_a_node_group_over_capacity_fails_naming_the_group_and_the_workloads(tmp_path: Path) -> None:
    profiles = child(
        tmp_path,
        "busy",
        {
            "processing": {
                "services": [
                    {
                        "name": "resize",
                        "autoscaling": {"min_replicas": 20, "max_replicas": 30, "target_cpu_utilization": 70},
                    }
                ]
            }
        },
    )
    message = failure(profiles, "busy")
    assert (
        "prod.yaml:" in message
        and "cluster.worker_nodes[0].resources: over capacity: "
        "node-type=cpu-intensive (k3s-worker-01): 12.74 CPU requested by "
        in message
    )
    assert "Deployment resize-blue, Deployment resize-green" in message and "of 8" in message


def test_one_pod_larger_than_any_node_it_may_run_on(tmp_path: Path) -> None:
    profiles = child(
        tmp_path,
        "big",
        {
            "processing": {
                "services": [
                    {
                        "name": "grpc-gateway",
                        "resources": {
                            "requests": {"cpu": "100m", "memory": "20Gi"},
                            "limits": {"cpu": "1", "memory": "24Gi"},
                        },
                    }
                ]
            }
        },
    )
    message = failure(profiles, "big")
    assert (
        "big.yaml:" in message
        and "processing.services[0]: one pod of Deployment grpc-gateway requests 20Gi "
        "memory, more than any node it may run on has (node-type=cpu-intensive (k3s-worker-01): at most 16Gi)"
        in message
    )


def test_daemonsets_count_once_per_node_and_gpus_are_counted(tmp_path: Path) -> None:
    report = report_of(PROFILES, "prod")
    gpu = next(r for r in report.rows if r.name.startswith("node-type=gpu-enabled"))
    # Triton (2 CPU, the GPU), ai-detection beside it (500m), one agent (100m), one node exporter
    # (20m), the GPU exporter (50m, no GPU: it reads them through the runtime)
    assert gpu.requested["gpu"] == 1 and gpu.requested["cpu"] == Decimal("2.67")
    profiles = child(tmp_path, "gpus", {"workloads": [{"name": "triton", "replicas": 2}]})
    message = failure(profiles, "gpus")
    assert (
        "over capacity: node-type=gpu-enabled (k3s-worker-02): 2 GPU requested by Deployment triton, of 1" in message
        and "DaemonSet" not in message.split("GPU requested by")[1].split("\n")[0]
    )


def test_volumes_over_node_storage_fail(tmp_path: Path) -> None:
    profiles = child(tmp_path, "seedsize", {"storage": {"minio": {"volumes": {"size": "1Ti"}}}})
    message = failure(profiles, "seedsize")
    assert (
        "prod.yaml:" in message
        and "cluster.worker_nodes[2].resources: over capacity: k3s-worker-03: 4.02Ti "
        "storage claimed by PersistentVolume minio-data-01, PersistentVolume minio-data-02, PersistentVolume "
        "minio-data-03, PersistentVolume minio-data-04, claim data-postgresql-0, of 2Ti"
        in message
    )


def test_local_path_claims_count_on_the_one_node_their_workload_runs_on(tmp_path: Path) -> None:
    """A workload placed on one node (here the PostgreSQL store's server) stores its local-path
    claims on that node's disk."""
    profiles = child(
        tmp_path,
        "bigdb",
        {"storage": {"postgresql": {"volume": {"size": "500Gi"}}}},
    )
    message = failure(profiles, "bigdb")
    assert (
        "cluster.worker_nodes[2].resources: over capacity: k3s-worker-03: 2.05Ti storage claimed by "
        "PersistentVolume minio-data-01, PersistentVolume minio-data-02, PersistentVolume minio-data-03, "
        "PersistentVolume minio-data-04, claim data-postgresql-0, of 2Ti" in message
    )


def test_compose_stacks_against_their_vm(tmp_path: Path) -> None:
    profiles = child(tmp_path, "smallvm", {"vms": [{"name": "vm0", "cpu": 2}]})
    message = failure(profiles, "smallvm")
    assert (
        "smallvm.yaml:" in message
        and "vms[0]: over capacity: vm0 (compose limits): 3.8 CPU limits of backend-api x3, web-ui, api-gateway, "
        "vm0-node-exporter, of 2"
        in message
    )


def test_warning_above_80_percent_does_not_fail(tmp_path: Path) -> None:
    profiles = child(tmp_path, "near", {"storage": {"minio": {"volumes": {"size": "450Gi"}}}})
    result = run_cli("validate", "--profile", "near", "--profiles-dir", str(profiles), "--no-tools")
    assert result.code == 0, result.stderr
    assert "warning: " in result.stderr and "89% of capacity (over 80%): k3s-worker-03: 1.78Ti storage" in result.stderr


def test_capacity_command_prints_the_table_and_the_costs() -> None:
    result = run_cli("capacity", "--profile", "prod")
    assert result.code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["scope", "name", "CPU", "memory", "GPU", "storage"]
    assert any(line.startswith("node     k3s-worker-03") and "1.58Ti/2Ti (79%)" in line for line in lines)
    assert any(line.startswith("cluster  cluster (4 nodes)") and "9.5/24 (40%)" in line for line in lines)
    assert "  vm2           800 - 1500" in lines and "  total        1100 - 2100" in lines
    assert all(line.startswith("warning: ") for line in result.stderr.splitlines())


def test_capacity_command_exits_1_over_capacity(tmp_path: Path) -> None:
    profiles = child(tmp_path, "seedsize", {"storage": {"minio": {"volumes": {"size": "1Ti"}}}})
    result = run_cli("capacity", "--profile", "seedsize", "--profiles-dir", str(profiles))
    assert result.code == 1 and "4.02Ti/2Ti (201%)" in result.stdout
    assert "error: " in result.stderr and "over capacity: k3s-worker-03" in result.stderr


@pytest.mark.parametrize("profile", ["dev", "staging", "prod"])
def test_the_compose_stacks_carry_exactly_the_envelopes_the_capacity_check_sums(profile: str) -> None:
    import yaml

    from imageflow_gen.pipeline import validated
    from imageflow_gen.plan.vms import stacks

    files = build(PROFILES, profile, CRDS).files
    for vm, envelopes in stacks(validated(PROFILES, profile)[2].topology).items():
        compose = yaml.safe_load(files[f"compose/{profile}/{vm}/docker-compose.yaml"])["services"]
        assert sorted(compose) == sorted(envelopes)
        for name, env in envelopes.items():
            deploy = compose[name]["deploy"]
            assert deploy["resources"]["limits"] == {"cpus": env.cpus, "memory": env.memory, "pids": env.pids}
            assert deploy.get("replicas", 1) == env.replicas
            assert (compose[name]["restart"] == "on-failure") == env.one_shot
