"""The OTel agent's paths end somewhere: its host mounts feed its logs pipeline, which goes through
Kafka into a bucket; its metrics wait for their readers; its Kafka client authenticates as the
cluster's workloads do. Read from the rendered objects and compose files.
"""

from __future__ import annotations

import json
import re
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import pytest

from conftest import CRDS, PROFILES
from imageflow_gen.errors import ImageflowError
from imageflow_gen.pipeline import build, validated
from imageflow_gen.targets.kubernetes import objects

PROFILE_NAMES = ["base", "dev", "staging", "prod"]


def _agent(objs: list[dict[str, Any]], name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the DaemonSet's pod spec, the parsed collector config)."""
    daemonset = next(o for o in objs if o["kind"] == "DaemonSet" and o["metadata"]["name"] == name)
    config = next(o for o in objs if o["kind"] == "ConfigMap" and o["metadata"]["name"] == f"{name}-config")
    return daemonset["spec"]["template"]["spec"], json.loads(config["data"]["config.yaml"])


def _go_regex(pattern: str) -> re.Pattern[str]:
    """An RE2 pattern of the config in Python's syntax (named groups are written alike)."""
    return re.compile(pattern)


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_the_agents_host_mounts_feed_its_logs_into_kafka_and_a_bucket(profile: str) -> None:
    _, topo, plan = validated(PROFILES, profile)
    objs = objects(plan)
    agent = topo.observability.otel_agent
    pod, config = _agent(objs, agent.name)
    (container,) = pod["containers"]
    host_paths = {v["hostPath"]["path"] for v in pod["volumes"] if "hostPath" in v}
    mounted = {m["mountPath"] for m in container["volumeMounts"]}
    assert host_paths and host_paths <= mounted
    filelog = config["receivers"]["filelog"]
    for pattern in filelog["include"]:
        assert any(pattern.startswith(p.rstrip("/") + "/") for p in host_paths), pattern
    # Not its own logs (they would loop through the pipeline), everyone else's.
    own = f"/var/log/pods/{agent.namespace}_{agent.name}-x7k2p_0b6f3c1e-1111-2222-3333-444455556666/{agent.name}/0.log"
    other = "/var/log/pods/imageflow-processing_resize-7d9f8-abcde_0b6f3c1e-1111-2222-3333-444455556666/resize/1.log"
    assert any(fnmatch(own, p) for p in filelog["exclude"]) and not any(fnmatch(other, p) for p in filelog["exclude"])
    assert any(fnmatch(other, p) for p in filelog["include"])
    operators = {op["id"]: op for op in filelog["operators"] if "id" in op}
    cri = _go_regex(operators["cri"]["regex"]).match("2024-05-01T10:00:00.123456789Z stderr F resize failed: x")
    assert cri and cri["log"] == "resize failed: x" and cri["stream"] == "stderr"
    path = _go_regex(operators["path"]["regex"]).match(other)
    assert path and (path["namespace"], path["pod_name"], path["container_name"]) == (
        "imageflow-processing",
        "resize-7d9f8-abcde",
        "resize",
    )
    # The pipeline: files and OTLP in, Kafka out, to a topic Kafka Connect sinks into a bucket
    # whose writer may write it.
    logs = config["service"]["pipelines"]["logs"]
    assert set(logs["receivers"]) == {"filelog", "otlp"} and logs["exporters"] == ["kafka"]
    topic = config["exporters"]["kafka"]["topic"]
    assert topic in {t.name for t in topo.messaging.kafka.topics}
    files = build(PROFILES, profile, CRDS).files
    vm = topo.messaging.kafka.vm
    sinks = [
        json.loads(text)
        for name, text in files.items()
        if name.startswith(f"compose/{profile}/{vm}/connectors/") and name.endswith(".json")
    ]
    (sink,) = [s for s in sinks if topic in s["topics"].split(",")]
    policies = next(o for o in objs if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "minio-policies")
    writer = json.loads(policies["data"]["kafka-connect.json"])
    assert any(
        "s3:PutObject" in st["Action"] and f"arn:aws:s3:::{sink['s3.bucket.name']}/*" in st["Resource"]
        for st in writer["Statement"]
    )
    # The runtime's log files are root:root 0640: read through the group, not as root.
    security = pod["securityContext"]
    assert security["runAsNonRoot"] is True and security["runAsUser"] != 0 and security["supplementalGroups"] == [0]
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}


def test_the_agents_kafka_client_is_its_own_kafka_user(tmp_path: Path) -> None:
    from test_kafka_security import _profiles

    profiles = _profiles(tmp_path, private="SASL_SSL")
    _, topo, plan = validated(profiles, "secure")
    objs = objects(plan)
    agent = topo.observability.otel_agent
    pod, config = _agent(objs, agent.name)
    auth = config["exporters"]["kafka"]["auth"]
    assert auth["sasl"] == {
        "username": agent.name,
        "password": "${file:/etc/imageflow/kafka/password}",
        "mechanism": "SCRAM-SHA-512",
    }
    assert auth["tls"] == {"ca_file": "/etc/imageflow/kafka/ca.crt"}
    (container,) = pod["containers"]
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == "/etc/imageflow/kafka")
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    assert volume["secret"]["secretName"] == f"kafka-{agent.name}"
    assert {i["key"] for i in volume["secret"]["items"]} == {"password", "ca.crt"}
    assert any(
        o["kind"] == "ExternalSecret"
        and (o["metadata"]["namespace"], o["metadata"]["name"]) == (agent.namespace, f"kafka-{agent.name}")
        for o in objs
    )
    # It may write its logs topic and nothing else.
    script = build(profiles, "secure", CRDS).files["compose/secure/vm1/docker-compose.yaml"]
    assert f"--allow-principal User:{agent.name} --operation Write --topic {agent.logs_topic} " in script
    assert script.count(f"User:{agent.name} ") == 1


@pytest.mark.parametrize(
    ("agent", "key", "message"),
    [
        ({"logs_topic": None}, "host_paths", "mounted for the logs pipeline, which is off"),
        ({"logs_topic": "no-such-topic"}, "logs_topic", "'no-such-topic' is not a Kafka topic (defined: "),
        ({"host_paths": ["/var/lib/docker/containers"]}, "host_paths", "the logs pipeline reads /var/log/pods"),
    ],
)
def test_the_logs_pipeline_and_its_mounts_go_together(tmp_path: Path, agent: dict, key: str, message: str) -> None:
    from test_hostile import profile_with

    data = {"purpose": "x", "extends": "dev", "observability": {"otel_agent": agent}}
    with pytest.raises(ImageflowError) as caught:
        build(profile_with(tmp_path, "logs", data), "logs")
    (problem,) = caught.value.problems
    assert problem.key == f"observability.otel_agent.{key}" and problem.message.startswith(message)
    assert problem.location.file.endswith(("logs.yaml", "base.yaml"))


def test_without_logs_the_agent_mounts_nothing_and_has_no_kafka_client(tmp_path: Path) -> None:
    from test_hostile import profile_with

    data = {"purpose": "x", "extends": "dev", "observability": {"otel_agent": {"logs_topic": None, "host_paths": []}}}
    objs = objects(validated(profile_with(tmp_path, "quiet", data), "quiet")[2])
    pod, config = _agent(objs, "otel-agent")
    assert not any("hostPath" in v for v in pod["volumes"]) and "supplementalGroups" not in pod["securityContext"]
    assert "logs" not in config["service"]["pipelines"] and "kafka" not in config["exporters"]
    assert not any(o["kind"] == "NetworkPolicy" and "otel-agent-to-kafka" in o["metadata"]["name"] for o in objs)


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_every_claim_names_a_class_that_gives_it_a_volume(profile: str) -> None:
    """No claim waits for a default StorageClass the cluster may not have: each names one
    defined in the output (MinIO's, with its volumes) or one the cluster provides (listed as a
    prerequisite in the generated README)."""
    _, topo, plan = validated(PROFILES, profile)
    objs = objects(plan)
    defined = {o["metadata"]["name"] for o in objs if o["kind"] == "StorageClass"}
    claims = [
        (o["metadata"]["name"], c)
        for o in objs
        if o["kind"] == "StatefulSet"
        for c in o["spec"].get("volumeClaimTemplates", [])
    ] + [(o["metadata"]["name"], o) for o in objs if o["kind"] == "PersistentVolumeClaim"]
    assert {name for name, _ in claims} >= {"minio", topo.observability.tempo.name}
    for name, claim in claims:
        cls = claim["spec"].get("storageClassName")
        assert cls in defined or cls in topo.storage.cluster_classes, (name, cls)
    readme = build(PROFILES, profile, CRDS).files[f"docs/{profile}/README.md"]
    assert "the StorageClass local-path, which the cluster provides (K3s: local-path), for Tempo's volume" in readme


@pytest.mark.parametrize(
    ("storage_class", "message"),
    [
        ("fast-ssd", "storage class 'fast-ssd' has no provisioner: nothing would create Tempo's volume"),
        ("gold", "storage class 'gold' is neither defined nor provided by the cluster (defined: fast-ssd, local-path)"),
    ],
)
def test_tempos_class_must_provision_its_volume(tmp_path: Path, storage_class: str, message: str) -> None:
    from test_hostile import profile_with

    data = {"purpose": "x", "extends": "dev", "observability": {"tempo": {"storage_class": storage_class}}}
    with pytest.raises(ImageflowError) as caught:
        build(profile_with(tmp_path, "tempo", data), "tempo")
    (problem,) = caught.value.problems
    assert problem.key == "observability.tempo.storage_class" and problem.message == message


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_every_workload_with_more_than_one_replica_has_a_budget_and_the_readme_says_what_blocks(
    profile: str,
) -> None:
    _, topo, plan = validated(PROFILES, profile)
    objs = objects(plan)
    budgets = [o for o in objs if o["kind"] == "PodDisruptionBudget"]
    hpas = {
        o["spec"]["scaleTargetRef"]["name"]: o["spec"]["minReplicas"]
        for o in objs
        if o["kind"] == "HorizontalPodAutoscaler"
    }
    for obj in objs:
        if obj["kind"] not in ("Deployment", "StatefulSet"):
            continue
        replicas = hpas.get(obj["metadata"]["name"], obj["spec"].get("replicas", 1))
        labels = obj["spec"]["template"]["metadata"]["labels"]
        covering = [
            b
            for b in budgets
            if b["metadata"]["namespace"] == obj["metadata"]["namespace"]
            and all(labels.get(k) == v for k, v in b["spec"]["selector"]["matchLabels"].items())
        ]
        if replicas > 1:
            assert len(covering) == 1 and covering[0]["spec"] == {
                "maxUnavailable": 1,
                "selector": covering[0]["spec"]["selector"],
            }, obj["metadata"]["name"]
        # A budget never covers two workloads (it would count their pods together).
        for budget in covering:
            selected = [
                o
                for o in objs
                if o["kind"] in ("Deployment", "StatefulSet")
                and o["metadata"]["namespace"] == budget["metadata"]["namespace"]
                and all(
                    o["spec"]["template"]["metadata"]["labels"].get(k) == v
                    for k, v in budget["spec"]["selector"]["matchLabels"].items()
                )
            ]
            assert len(selected) == 1, budget["metadata"]["name"]
    readme = build(PROFILES, profile, CRDS).files[f"docs/{profile}/README.md"]
    drains = readme.split("## Draining a node", 1)[1].split("## How to validate", 1)[0]
    for host in set(topo.storage.minio.volumes.hosts):
        assert f"Draining **{host}**" in drains
    if profile == "prod":
        assert "- Draining **k3s-worker-03**:\n  - stops after evicting one pod of StatefulSet minio" in drains
