"""prod carries every value the seed (infra-design.ja.md, chapter 8) gives, field for field.

The seed's own YAML blocks (copied unchanged into tests/fixtures/seed/blocks.yaml by
tools/seed_fixtures.py; the seed itself is not part of the repository): every Kubernetes object in
them must be contained in prod's output (every key and value the seed writes, lists item by
item, additions allowed), and the cluster and namespace blocks must match the topology and
the K3s node configs.
"""

from __future__ import annotations

import pathlib
from typing import Any

import pytest
import yaml

from conftest import CRDS, PROFILES, REPO
from imageflow_gen.pipeline import build, validated
from imageflow_gen.targets.kubernetes import identity, objects

SEED_BLOCKS = REPO / "tests" / "fixtures" / "seed" / "blocks.yaml"


def seed_documents() -> list[Any]:
    return [doc for doc in yaml.safe_load_all(SEED_BLOCKS.read_text(encoding="utf-8")) if doc is not None]


def seed_objects() -> list[dict]:
    return [d for d in seed_documents() if isinstance(d, dict) and "apiVersion" in d and "kind" in d]


def contained(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Where `actual` lacks or differs from something `expected` has. A list of named items
    (containers, ports, volumes, mounts, env: Kubernetes merges them by name) is compared item
    by name, any other list item by item."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path}: expected a map, got {actual!r}"]
        return [
            m
            for k, v in expected.items()
            for m in (contained(v, actual[k], f"{path}.{k}") if k in actual else [f"{path}.{k}: missing"])
        ]
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) < len(expected):
            return [f"{path}: expected at least {len(expected)} items, got {actual!r}"]
        if all(isinstance(v, dict) and "name" in v for v in [*expected, *actual]):
            named = {v["name"]: v for v in actual}
            return [
                m
                for v in expected
                for m in (
                    contained(v, named[v["name"]], f"{path}[{v['name']}]")
                    if v["name"] in named
                    else [f"{path}[{v['name']}]: missing"]
                )
            ]
        return [m for i, v in enumerate(expected) for m in contained(v, actual[i], f"{path}[{i}]")]
    if expected == actual and type(expected) is type(actual):
        return []
    return [f"{path}: seed {expected!r}, got {actual!r}"]


@pytest.fixture(scope="module")
def prod_objects() -> dict:
    return {identity(o): o for o in objects(validated(PROFILES, "prod")[2])}


def test_the_seed_has_the_objects_this_test_expects() -> None:
    kinds = sorted(f"{o['kind']}/{o['metadata']['name']}" for o in seed_objects())
    assert kinds == [
        "ConfigMap/minio-config",
        "DaemonSet/otel-agent",
        "NetworkPolicy/processing-isolation",
        "PersistentVolume/minio-data-01",
        "StatefulSet/tempo",
        "StorageClass/fast-ssd",
        "VirtualService/imageflow-api",
    ]


# Where prod departs from a value of the seed because the seed's own numbers do not fit, and
# the line of docs/seed-deviations.md that says so. Nothing else may differ.
DEVIATIONS = {
    (
        "PersistentVolume/minio-data-01",
        ".spec.capacity.storage: seed '1Ti', got '400Gi'",
    ): "4 x 1Ti MinIO drives do not fit",
    (
        "ConfigMap/minio-config",
        ".data.MINIO_DEFAULT_BUCKETS: seed 'raw-images:rw\\nprocessed-images:rw\\nsystem-logs:r\\n', got "
        "'raw-images:rw\\nprocessed-images:rw\\nsystem-logs:r\\ndatabase-backups:rw\\n'",
    ): "a fourth bucket, `database-backups`, holds PostgreSQL's dumps",
}


@pytest.mark.parametrize("seed", seed_objects(), ids=lambda o: f"{o['kind']}-{o['metadata']['name']}")
def test_prod_contains_every_seed_object_field_for_field(seed: dict, prod_objects: dict) -> None:
    key = identity(seed)
    assert key in prod_objects, f"prod has no {key}"
    name = f"{seed['kind']}/{seed['metadata']['name']}"
    differences = [d for d in contained(seed, prod_objects[key]) if (name, d) not in DEVIATIONS]
    assert differences == []


def test_every_deviation_from_a_seed_value_is_documented_and_still_needed(prod_objects: dict) -> None:
    docs = (PROFILES.parent / "docs/seed-deviations.md").read_text(encoding="utf-8")
    seeds = {f"{o['kind']}/{o['metadata']['name']}": o for o in seed_objects()}
    for (name, difference), reason in DEVIATIONS.items():
        assert reason in docs, reason
        assert difference in contained(seeds[name], prod_objects[identity(seeds[name])])


def test_prod_cluster_matches_the_seed() -> None:
    (cluster,) = [d["cluster"] for d in seed_documents() if isinstance(d, dict) and "cluster" in d]
    topo = validated(PROFILES, "prod")[1]
    assert (topo.cluster.name, topo.cluster.version) == (cluster["name"], cluster["version"])
    for group in ("master_nodes", "worker_nodes"):
        ours = getattr(topo.cluster, group)
        assert [n.name for n in ours] == [n["name"] for n in cluster[group]]
        for node, seed in zip(ours, cluster[group], strict=True):
            assert node.ip == seed["ip"]
            res = seed["resources"]
            assert (node.resources.cpu, node.resources.memory, node.resources.storage, node.resources.gpu) == (
                res["cpu"],
                res["memory"],
                res["storage"],
                res.get("gpu", 0),
            )
            assert node.labels == seed.get("labels", {})


def test_prod_k3s_configs_carry_the_seed_nodes() -> None:
    (cluster,) = [d["cluster"] for d in seed_documents() if isinstance(d, dict) and "cluster" in d]
    files = build(PROFILES, "prod", CRDS).files
    for group, role in (("master_nodes", "server"), ("worker_nodes", "agent")):
        for seed in cluster[group]:
            config = yaml.safe_load(files[f"k3s/prod/{seed['name']}.yaml"])
            assert config["node-ip"] == seed["ip"] and config["node-name"] == seed["name"]
            assert ("server" in config) == (role == "agent")
            labels = [f"{k}={v}" for k, v in seed.get("labels", {}).items()]
            assert config.get("node-label", []) == labels
    gpu = yaml.safe_load(files["k3s/prod/k3s-worker-02.yaml"])
    assert gpu["node-taint"] == ["nvidia.com/gpu=true:NoSchedule"]


def test_prod_namespaces_match_the_seed(prod_objects: dict) -> None:
    (seed,) = [d["namespaces"] for d in seed_documents() if isinstance(d, dict) and "namespaces" in d]
    topo = validated(PROFILES, "prod")[1]
    purposes = {ns.name: ns.purpose for ns in topo.namespaces}
    for ns in seed:
        assert purposes[ns["name"]] == ns["purpose"]
        obj = prod_objects[("", "Namespace", "", ns["name"])]
        assert obj["metadata"]["labels"]["name"] == ns["name"]  # what the seed's namespaceSelector matches
        assert obj["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert "imageflow-observability" in purposes


def test_prod_vms_match_the_seed_table() -> None:
    """Seed 8.0.5: VM0 4 vCPU/8 GB/100 GB SSD/1 Gbps, VM1 8/16/500 SSD/10, VM2 16/64/1 TB NVMe/10 + GPU."""
    topo = validated(PROFILES, "prod")[1]
    table = {
        vm.name: (
            vm.role,
            vm.cpu,
            vm.memory_gb,
            vm.storage_gb,
            vm.storage_type,
            vm.network_gbps,
            vm.gpu > 0,
            vm.monthly_cost_usd.min,
            vm.monthly_cost_usd.max,
        )
        for vm in topo.vms
    }
    assert table == {
        "vm0": ("edge", 4, 8, 100, "ssd", 1, False, 100, 200),
        "vm1": ("messaging", 8, 16, 500, "ssd", 10, False, 200, 400),
        "vm2": ("compute", 16, 64, 1000, "nvme", 10, True, 800, 1500),
    }


def test_prod_minio_has_one_pv_per_drive_pinned_and_bound(prod_objects: dict) -> None:
    pvs = {k[3]: o for k, o in prod_objects.items() if k[1] == "PersistentVolume"}
    assert sorted(pvs) == ["minio-data-01", "minio-data-02", "minio-data-03", "minio-data-04"]
    for number, name in enumerate(sorted(pvs)):
        spec = pvs[name]["spec"]
        assert spec["hostPath"]["path"] == f"/data/minio/{number + 1:02d}"
        assert spec["claimRef"] == {"namespace": "imageflow-storage", "name": f"data-minio-{number}"}
        term = spec["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]
        assert term["values"] == ["k3s-worker-03"]
    minio = prod_objects[("apps", "StatefulSet", "imageflow-storage", "minio")]
    assert minio["spec"]["replicas"] == 4 and minio["spec"]["podManagementPolicy"] == "Parallel"
    assert (
        minio["spec"]["template"]["spec"]["containers"][0]["args"][1]
        == "https://minio-{0...3}.minio-hl.imageflow-storage.svc.cluster.local:9000/data"  # prod: MinIO TLS
    )


def test_prod_creates_the_seed_buckets_private(prod_objects: dict) -> None:
    job = prod_objects[("batch", "Job", "imageflow-storage", "minio-buckets")]
    script = job["spec"]["template"]["spec"]["containers"][0]["command"][2]
    # The seed's rw/r are what the platform does with the buckets, not anonymous access: every
    # bucket is private (and made private again on each run) unless it says `anonymous`.
    for bucket in ("raw-images", "processed-images", "system-logs"):
        assert f"mc mb --ignore-existing imageflow/{bucket}\n" in script
        assert f"mc anonymous set none imageflow/{bucket}\n" in script
    assert "public" not in script and "download" not in script
    assert '"$(cat /run/secrets/minio/rootUser)" "$(cat /run/secrets/minio/rootPassword)"' in script
    volumes = job["spec"]["template"]["spec"]["volumes"]
    assert {"name": "credentials", "secret": {"secretName": "minio-credentials", "defaultMode": 0o440}} in volumes


def test_prod_processing_placement(prod_objects: dict) -> None:
    def pod(name: str) -> dict:
        return prod_objects[("apps", "Deployment", "imageflow-processing", name)]["spec"]["template"]

    # ai-detection on the GPU node beside Triton, which holds the node's one GPU (docs/seed-deviations.md)
    ai = pod("ai-detection")
    taint = [{"key": "nvidia.com/gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"}]
    assert ai["metadata"]["labels"]["tier"] == "processing"
    assert ai["spec"]["nodeSelector"] == {"node-type": "gpu-enabled"}
    assert "nvidia.com/gpu" not in ai["spec"]["containers"][0]["resources"]["limits"]
    assert ai["spec"]["tolerations"] == taint
    triton = prod_objects[("apps", "Deployment", "imageflow-inference", "triton")]["spec"]["template"]["spec"]
    assert triton["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert triton["runtimeClassName"] == "nvidia" and triton["tolerations"] == taint
    assert ai["spec"]["containers"][0]["readinessProbe"]["grpc"] == {"port": 8080}
    # resize is released blue-green, filter by canary (seed 8.0.6): every variant is placed alike.
    for name in ("resize-blue", "resize-green", "filter", "filter-canary", "grpc-gateway"):
        assert pod(name)["spec"]["nodeSelector"] == {"node-type": "cpu-intensive"}
        assert "tolerations" not in pod(name)["spec"]
    hpas = sorted(k[3] for k in prod_objects if k[1] == "HorizontalPodAutoscaler")
    assert hpas == ["filter", "resize-blue", "resize-green"]


def test_prod_reaches_kafka_on_vm1_by_a_stable_name(prod_objects: dict) -> None:
    service = prod_objects[("", "Service", "imageflow-backend", "kafka")]
    assert "selector" not in service["spec"]
    slice_ = prod_objects[("discovery.k8s.io", "EndpointSlice", "imageflow-backend", "kafka-vm")]
    assert slice_["endpoints"][0]["addresses"] == ["10.0.2.10"]
    assert [p["port"] for p in slice_["ports"]] == [p["port"] for p in service["spec"]["ports"]] == [9094, 19094, 29094]


def test_prod_network_policies_make_the_real_flows_work(prod_objects: dict) -> None:
    policies = {(k[2], k[3]): o["spec"] for k, o in prod_objects.items() if k[1] == "NetworkPolicy"}
    namespaces = [k[3] for k in prod_objects if k[1] == "Namespace"]
    for ns in namespaces:
        assert policies[(ns, "default-deny")]["policyTypes"] == ["Ingress", "Egress"]
        dns = policies[(ns, "allow-dns")]["egress"][0]
        assert {"protocol": "UDP", "port": 53} in dns["ports"]
    assert policies[("imageflow-processing", "allow-grpc-gateway-to-kafka-egress")]["egress"][0]["to"] == [
        {"ipBlock": {"cidr": "10.0.2.10/32"}}
    ]
    ingress = policies[("imageflow-backend", "allow-gateway-to-backend-api-ingress")]["ingress"][0]
    assert ingress["from"][0]["podSelector"] == {"matchLabels": {"istio": "ingressgateway"}}
    assert ingress["ports"] == [{"protocol": "TCP", "port": 8000}]
    for name in ("allow-otel-agent-to-tempo-ingress", "allow-imageflow-processing-to-otel-agent-ingress"):
        assert ("imageflow-observability", name) in policies


def test_gateway_the_seed_route_names_exists_with_tls_by_reference(prod_objects: dict) -> None:
    gateway = prod_objects[("networking.istio.io", "Gateway", "imageflow-backend", "imageflow-gateway")]
    https = gateway["spec"]["servers"][0]
    # The seed's host, the web UI's, the camera streams' and Grafana's own hosts (docs/seed-deviations.md).
    hosts = ["api.imageflow.com", "app.imageflow.com", "streams.imageflow.com", "grafana.imageflow.com"]
    assert https["hosts"] == hosts and https["tls"] == {
        "mode": "SIMPLE",
        "credentialName": "imageflow-api-tls",
    }


def test_containment_reports_what_differs() -> None:
    assert contained({"a": {"b": [1, {"c": "x"}]}}, {"a": {"b": [1, {"c": "x", "d": 2}, 3]}, "e": 0}) == []
    assert contained({"a": 1}, {"a": "1"}) == [".a: seed 1, got '1'"]
    assert contained({"a": [1, 2]}, {"a": [1]}) == [".a: expected at least 2 items, got [1]"]
    assert contained({"a": {"b": 1}}, {"a": {}}) == [".a.b: missing"]


def test_anonymous_access_only_where_a_bucket_says_so(tmp_path: pathlib.Path) -> None:
    from test_hostile import profile_with

    bucket = {"name": "raw-images", "access": "rw", "anonymous": "download"}
    profiles = profile_with(
        tmp_path, "shared", {"purpose": "x", "extends": "prod", "storage": {"minio": {"buckets": [bucket]}}}
    )
    (job,) = [o for o in objects(validated(profiles, "shared")[2]) if o["metadata"]["name"] == "minio-buckets"]
    script = job["spec"]["template"]["spec"]["containers"][0]["command"][2]
    assert "mc anonymous set download imageflow/raw-images\n" in script
    assert "mc anonymous set none imageflow/processed-images\n" in script


def test_the_web_ui_in_the_cluster_has_a_route_through_the_gateway(prod_objects: dict) -> None:
    route = prod_objects[("networking.istio.io", "VirtualService", "imageflow-web", "web-ui")]["spec"]
    assert route["hosts"] == ["app.imageflow.com"] and route["gateways"] == ["imageflow-backend/imageflow-gateway"]
    assert route["http"][0]["route"][0]["destination"] == {"host": "web-ui", "port": {"number": 8080}}
    gateway = prod_objects[("networking.istio.io", "Gateway", "imageflow-backend", "imageflow-gateway")]["spec"]
    assert all("app.imageflow.com" in server["hosts"] for server in gateway["servers"])
    policy = prod_objects[("networking.k8s.io", "NetworkPolicy", "imageflow-web", "allow-gateway-to-web-ui-ingress")]
    assert policy["spec"]["podSelector"]["matchLabels"] == {"app": "web-ui"}


@pytest.mark.parametrize(
    ("hosts", "expected"),
    [
        ([], "edge.web_ui.hosts: the web UI runs in the cluster: name the hosts the gateway sends to it"),
        (["web.example.com"], "edge.web_ui.hosts[0]: 'web.example.com' is not one of the gateway's hosts"),
        (["api.imageflow.com"], "edge.web_ui.hosts[0]: 'api.imageflow.com' is network.routes[0]'s host too"),
    ],
)
def test_the_web_ui_hosts_are_checked(tmp_path: pathlib.Path, hosts: list[str], expected: str) -> None:
    from test_hostile import profile_with

    from imageflow_gen.errors import ImageflowError

    data = {"purpose": "x", "extends": "prod", "edge": {"web_ui": {"hosts": hosts}}}
    with pytest.raises(ImageflowError) as caught:
        build(profile_with(tmp_path, "web", data), "web", CRDS)
    (problem,) = caught.value.problems
    assert expected in str(problem) and problem.location.file.endswith(("web.yaml", "base.yaml"))
