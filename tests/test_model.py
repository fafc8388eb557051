"""The model and its cross-field checks, on the shipped profiles and on planted mistakes."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from conftest import PROFILES
from imageflow_gen.errors import ValidationFailed, dotted
from imageflow_gen.loading import load_profile
from imageflow_gen.model import Topology
from imageflow_gen.model.checks import check
from imageflow_gen.model.quantity import parse
from imageflow_gen.modelling import topology


@pytest.fixture(scope="module")
def prod() -> dict[str, Any]:
    return load_profile(PROFILES, "prod").data


def findings(data: dict[str, Any]) -> dict[str, str]:
    return {dotted(path): message for path, message in check(Topology.model_validate(data))}


def mutated(data: dict[str, Any], change) -> dict[str, Any]:
    data = copy.deepcopy(data)
    change(data)
    return data


@pytest.mark.parametrize("profile", ["base", "dev", "staging", "prod"])
def test_shipped_profiles_are_valid(profile: str) -> None:
    topo = Topology.model_validate(load_profile(PROFILES, profile).data)
    assert check(topo) == []


def test_prod_sizes(prod: dict[str, Any]) -> None:
    topo = Topology.model_validate(prod)
    assert [n.name for n in topo.cluster.nodes] == ["k3s-master-01", "k3s-worker-01", "k3s-worker-02", "k3s-worker-03"]
    assert topo.storage.minio.drives == 4 and len(topo.messaging.kafka.brokers) == 3
    assert topo.cluster.kubernetes_version == "1.28.9"


def test_dev_is_single_node_one_drive_one_broker() -> None:
    topo = Topology.model_validate(load_profile(PROFILES, "dev").data)
    assert len(topo.cluster.nodes) == 1 and topo.storage.minio.drives == 1
    assert len(topo.messaging.kafka.brokers) == 1


@pytest.mark.parametrize(
    ("change", "key", "text"),
    [
        (
            lambda d: d["cluster"]["worker_nodes"].append(copy.deepcopy(d["cluster"]["worker_nodes"][0])),
            "cluster.worker_nodes[3].name",
            "duplicate node name 'k3s-worker-01'",
        ),
        (
            lambda d: d["namespaces"].append(copy.deepcopy(d["namespaces"][0])),
            "namespaces[7].name",
            "duplicate namespace",
        ),
        (lambda d: d["storage"]["minio"].update(nodes=3), "storage.minio.nodes", "needs at least 4 drives"),
        (
            lambda d: d["storage"]["minio"].update(mode="standalone"),
            "storage.minio.nodes",
            "standalone mode runs exactly 1",
        ),
        (
            lambda d: d["messaging"]["kafka"].update(default_replication_factor=4),
            "messaging.kafka.default_replication_factor",
            "more than the 3 broker(s)",
        ),
        (
            lambda d: d["messaging"]["kafka"].update(min_insync_replicas=4),
            "messaging.kafka.min_insync_replicas",
            "acks=all would fail",
        ),
        (
            lambda d: d["messaging"]["kafka"]["topics"][0].update(replication_factor=5),
            "messaging.kafka.topics[0].replication_factor",
            "more than the 3 broker(s)",
        ),
        (
            lambda d: d["messaging"]["kafka"]["brokers"][1]["ports"].update(VPN=9092),
            "messaging.kafka.brokers[1].ports.VPN",
            "duplicate port on the Kafka VM 9092",
        ),
        (
            lambda d: d["messaging"]["kafka"]["brokers"][0]["ports"].pop("K3S"),
            "messaging.kafka.brokers[0].ports",
            "needs a port for each of CONTROLLER, K3S, VPN",
        ),
        (lambda d: d["vms"][1].pop("vpn_address"), "messaging.kafka.listeners[0].network", "no vpn_address"),
        (
            lambda d: d["workloads"][0].update(node_type="cpu-intensive"),  # triton, prod's GPU workload
            "workloads[0].gpu",
            "do not all have that many",
        ),
        (
            lambda d: d["processing"]["services"][1]["autoscaling"].update(min_replicas=9),
            "processing.services[1].autoscaling.min_replicas",
            "must not exceed max_replicas",
        ),
        (
            lambda d: d["processing"]["services"][1]["resources"]["requests"].update(cpu="2"),
            "processing.services[1].resources.requests.cpu",
            "request 2 is above the limit 1",
        ),
        (
            lambda d: d["network"]["routes"][0]["destination"].update(port=9000),
            "network.routes[0].destination.port",
            "has no port 9000",
        ),
        (
            lambda d: d["network"]["routes"][0].update(gateway="other"),
            "network.routes[0].gateway",
            "is not the topology's gateway",
        ),
        (
            lambda d: d["network"]["policies"][0]["egress"][0]["ports"][0].update(port=9999),
            "network.policies[0].egress[0].ports[0].port",
            "listens on port 9999",
        ),
        (
            lambda d: d["network"]["policies"][0]["ingress"][0].update(from_namespaces=["nowhere"]),
            "network.policies[0].ingress[0].from_namespaces[0]",
            "namespace 'nowhere' is not defined",
        ),
        (lambda d: d["edge"].update(vm="vm1"), "edge.vm", "has the role 'messaging', not 'edge'"),
        (
            lambda d: d["edge"]["api_gateway"]["auth"]["verifier"].update(service="web-ui"),
            "edge.api_gateway.auth.verifier.service",
            "'web-ui' can be no verifier: the backend or a workload on vm0 (defined: backend-api)",
        ),
        (lambda d: d["vms"][2].update(role="edge"), "vms[2].role", "more than one VM has the role 'edge'"),
        (
            lambda d: d["cluster"]["worker_nodes"][1].update(taints=[]),
            "cluster.worker_nodes[1].taints",
            "a GPU node in a multi-node cluster needs a NoSchedule taint",
        ),
        (
            lambda d: d["storage"]["minio"]["credentials"]["keys"].pop("secret-key"),
            "storage.minio.credentials.keys",
            "missing secret-key",
        ),
        (
            lambda d: d["messaging"]["kafka"].update(cluster_namespace="nowhere"),
            "messaging.kafka.cluster_namespace",
            "namespace 'nowhere' is not defined",
        ),
    ],
)
def test_cross_checks(prod: dict[str, Any], change, key: str, text: str) -> None:
    found = findings(mutated(prod, change))
    assert key in found, found
    assert text in found[key]


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("cluster", "version"), "1.28"),
        (("cluster", "master_nodes", 0, "ip"), "10.0.1"),
        (("storage", "minio", "image"), "minio/minio"),
        (("storage", "minio", "image"), "minio/minio:latest"),
        (("storage", "minio", "resources", "limits", "memory"), "1 GB"),
        (("storage", "minio", "resources", "limits", "cpu"), True),
        (("storage", "minio", "port"), 70000),
        (("storage", "minio", "buckets", 0, "name"), "Raw_Images"),
        (("network", "routes", 0, "retries", "per_try_timeout"), "10"),
        (("storage", "minio", "nodes"), "4"),
        (("storage", "minio", "browser"), "on"),
    ],
)
def test_field_types_are_strict(prod: dict[str, Any], path: tuple, value: Any) -> None:
    def change(d: dict) -> None:
        target = d
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value

    with pytest.raises(ValidationError) as caught:
        Topology.model_validate(mutated(prod, change))
    assert [tuple(e["loc"]) for e in caught.value.errors()] == [path]


def test_quantities() -> None:
    assert parse("500m") == parse("0.5") and parse("1Gi") == 2**30 and parse("1e3") == 1000 and parse(2) == 2
    with pytest.raises(ValueError):
        parse("1 GB")


def test_emitted_names_are_checked_after_suffixes(prod: dict[str, Any]) -> None:
    from imageflow_gen.plan import make_plan, name_findings

    long_name = "t" * 60
    data = mutated(prod, lambda d: d["observability"]["tempo"].update(name=long_name))
    found = {dotted(p): m for p, m in name_findings(make_plan(Topology.model_validate(data), "x"))}
    tempo = found["observability.tempo"]
    assert "StatefulSet name" in tempo and "at most 52 characters" in tempo
    assert name_findings(make_plan(Topology.model_validate(prod), "prod")) == []


def _child_of_prod(tmp_path: Path, text: str) -> list[str]:
    """The problems of a profile extending prod (prod and base copied beside it), as printed."""
    for name in ("base", "prod"):
        (tmp_path / f"{name}.yaml").write_bytes((PROFILES / f"{name}.yaml").read_bytes())
    (tmp_path / "child.yaml").write_text("extends: prod\n" + text)
    try:
        topology(load_profile(tmp_path, "child"))
    except ValidationFailed as exc:
        return [str(p).replace(str(tmp_path) + "/", "") for p in exc.problems]
    return []


def test_removing_what_another_item_references_is_blamed_on_the_removal(tmp_path: Path) -> None:
    problems = _child_of_prod(
        tmp_path,
        "processing:\n  services:\n    - {name: resize, $remove: true}\n"
        "namespaces:\n  - {name: imageflow-storage, $remove: true}\n",
    )
    assert problems == [
        "child.yaml:4:22 processing.services: removes 'resize', still referenced by "
        "processing.services[0].calls[0] (base.yaml:86:15)",
        "child.yaml:6:31 namespaces: removes 'imageflow-storage', still referenced by "
        "storage.minio.namespace (base.yaml:122:16), storage.postgresql.namespace (base.yaml:162:16), "
        "network.policies[0].egress[0].to_namespaces[0] (base.yaml:299:27)",
    ]


def test_a_removed_item_and_its_references_go_together(tmp_path: Path) -> None:
    problems = _child_of_prod(
        tmp_path,
        "processing:\n  services:\n    - {name: resize, $remove: true}\n"
        "    - name: grpc-gateway\n      calls: [ai-detection, filter]\n",
    )
    assert problems == []


def test_unsetting_a_required_key_is_blamed_on_the_unset(tmp_path: Path) -> None:
    problems = _child_of_prod(tmp_path, "storage:\n  minio:\n    $unset: [namespace]\n")
    assert problems == ["child.yaml:4:5 storage.minio.namespace: is required: a child profile cannot unset it"]


def test_a_child_switches_availability_by_unsetting_the_reason(tmp_path: Path) -> None:
    text = "processing:\n  services:\n    - name: ai-detection\n      availability: {survives: node-loss}\n"
    assert _child_of_prod(tmp_path, text) == [
        "prod.yaml:81:41 processing.services[2].availability.reason: only used with survives nothing "
        "(here survives is node-loss)"
    ]
    text = text.replace("{survives: node-loss}", "{survives: node-loss, $unset: [reason]}")
    assert _child_of_prod(tmp_path, text) == []
    service = topology(load_profile(tmp_path, "child")).processing.services[2]
    assert service.availability is not None and service.availability.model_dump() == {"survives": "node-loss"}
