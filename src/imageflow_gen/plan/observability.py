"""Tracing (seed 8.1.3): the seed's otel-agent DaemonSet and tempo StatefulSet, plus what they
reference and the seed omits: their ConfigMaps, the agent's ServiceAccount and RBAC, Services."""

from __future__ import annotations

import json
from typing import Any

from ..model import Topology
from ..model.observability import OtelAgent, Tempo
from .common import (
    Spec,
    container_security,
    disruption_budget,
    http_probe,
    labels,
    pod_security,
    resources,
    tunable,
    service_dns,
    spec,
)

OTEL_UID = 10001
TEMPO_UID = 10001
OTEL_HEALTH_PORT = 13133
EXEMPTION_ANNOTATION = "imageflow.io/pod-security-exemption"
EXEMPTION_REASON = (
    "hostPath: the seed (8.1.3.1) mounts /var/log and /var/lib/docker/containers read-only; "
    "only the privileged Pod Security level admits hostPath volumes"
)
_DOWNWARD = (
    ("KUBE_NODE_NAME", "spec.nodeName"),
    ("KUBE_POD_NAME", "metadata.name"),
    ("KUBE_POD_UID", "metadata.uid"),
    ("KUBE_NAMESPACE", "metadata.namespace"),
)


def otlp_endpoint(topo: Topology) -> str:
    """Where workloads send traces: the agent's Service, answered by the agent on their own node."""
    agent = topo.observability.otel_agent
    return f"http://{service_dns(agent.name, agent.namespace)}:{agent.ports.otlp_grpc}"


def specs(topo: Topology) -> list[Spec]:
    tempo = topo.observability.tempo
    return (
        _agent(topo)
        + _tempo(tempo)
        + [disruption_budget(tempo.name, tempo.namespace, ("observability", "tempo"), "observability")]
    )


def _host_volume_name(path: str) -> str:
    """/var/lib/docker/containers -> varlibdockercontainers, as the seed names its volumes."""
    return path.replace("/", "").replace("_", "").replace(".", "").lower()


def _agent_config(topo: Topology) -> str:
    agent, tempo = topo.observability.otel_agent, topo.observability.tempo
    config = {
        "extensions": {"health_check": {"endpoint": f"0.0.0.0:{OTEL_HEALTH_PORT}"}},
        "receivers": {
            "otlp": {
                "protocols": {
                    "grpc": {"endpoint": f"0.0.0.0:{agent.ports.otlp_grpc}"},
                    "http": {"endpoint": f"0.0.0.0:{agent.ports.otlp_http}"},
                }
            }
        },
        "processors": {
            "memory_limiter": {"check_interval": "1s", "limit_percentage": 80, "spike_limit_percentage": 25},
            "k8sattributes": {
                "auth_type": "serviceAccount",
                "passthrough": False,
                "filter": {"node_from_env_var": "KUBE_NODE_NAME"},
                "extract": {
                    "metadata": [
                        "k8s.namespace.name",
                        "k8s.pod.name",
                        "k8s.pod.uid",
                        "k8s.node.name",
                        "k8s.deployment.name",
                    ]
                },
                "pod_association": [
                    {"sources": [{"from": "resource_attribute", "name": "k8s.pod.ip"}]},
                    {"sources": [{"from": "connection"}]},
                ],
            },
            "batch": {},
        },
        "exporters": {
            "otlp": {
                "endpoint": f"{service_dns(tempo.name, tempo.namespace)}:{tempo.ports.otlp_grpc}",
                "tls": {"insecure": True},
            }
        },
        "service": {
            "extensions": ["health_check"],
            "telemetry": {"metrics": {"address": f"0.0.0.0:{agent.ports.metrics}"}},
            "pipelines": {
                "traces": {
                    "receivers": ["otlp"],
                    "processors": ["memory_limiter", "k8sattributes", "batch"],
                    "exporters": ["otlp"],
                }
            },
        },
    }
    return config_text(config)


def config_text(config: dict[str, Any]) -> str:
    """A config file as JSON (which YAML readers take): key-sorted, two-space indent.

    This is exactly what Helm's `toPrettyJson` writes, so the chart renders the same bytes.
    """
    return json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False)


def _agent_tolerations(topo: Topology, agent: OtelAgent) -> list[dict[str, Any]]:
    """The seed's master toleration, and every node taint: a DaemonSet belongs on every node."""
    result: list[dict[str, Any]] = []
    if agent.tolerate_master:
        result += [
            {"key": "node-role.kubernetes.io/master", "operator": "Exists", "effect": "NoSchedule"},
            {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"},
        ]
    taints = sorted({(t.key, t.effect) for node in topo.cluster.nodes for t in node.taints})
    result += [{"key": key, "operator": "Exists", "effect": effect} for key, effect in taints]
    return result


def _agent(topo: Topology) -> list[Spec]:
    agent = topo.observability.otel_agent
    source = ("observability", "otel_agent")
    agent_labels = labels(agent.name, "observability")
    config_name = f"{agent.name}-config"
    host_mounts = [{"name": _host_volume_name(p), "mountPath": p, "readOnly": True} for p in agent.host_paths]
    container = {
        "name": agent.name,
        "image": tunable(source + ("image",), agent.image, OtelAgent, "image"),
        "args": ["--config=/etc/otelcol-contrib/config.yaml"],
        "volumeMounts": [{"name": "config", "mountPath": "/etc/otelcol-contrib"}, *host_mounts],
        "env": [{"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}} for name, path in _DOWNWARD],
        "resources": resources(agent.resources, source),
        "ports": [
            {"containerPort": agent.ports.otlp_grpc, "name": "otlp-grpc", "protocol": "TCP"},
            {"containerPort": agent.ports.otlp_http, "name": "otlp-http", "protocol": "TCP"},
            {"containerPort": agent.ports.metrics, "name": "metrics", "protocol": "TCP"},
        ],
        "livenessProbe": http_probe("/", OTEL_HEALTH_PORT),
        "readinessProbe": http_probe("/", OTEL_HEALTH_PORT),
        "securityContext": container_security(),
    }
    volumes = [{"name": "config", "configMap": {"name": config_name}}]
    # No hostPath type, as in the seed: /var/lib/docker/containers does not exist on containerd nodes.
    volumes += [{"name": _host_volume_name(p), "hostPath": {"path": p}} for p in agent.host_paths]
    pod = {
        "serviceAccount": agent.name,
        "serviceAccountName": agent.name,
        "automountServiceAccountToken": True,
        "securityContext": pod_security(OTEL_UID),
        "containers": [container],
        "volumes": volumes,
        "tolerations": _agent_tolerations(topo, agent),
    }
    return [
        spec(
            "ConfigMap",
            "configmap",
            source,
            name=config_name,
            namespace=agent.namespace,
            labels=agent_labels,
            data={"config.yaml": _agent_config(topo)},
        ),
        spec(
            "ServiceAccount", "serviceaccount", source, name=agent.name, namespace=agent.namespace, labels=agent_labels
        ),
        spec(
            "ClusterRole",
            "clusterrole",
            source,
            name=agent.name,
            labels=agent_labels,
            rules=[
                {"apiGroups": [""], "resources": ["namespaces", "nodes", "pods"], "verbs": ["get", "list", "watch"]},
                {"apiGroups": ["apps"], "resources": ["replicasets"], "verbs": ["get", "list", "watch"]},
            ],
        ),
        spec(
            "ClusterRoleBinding",
            "clusterrolebinding",
            source,
            name=agent.name,
            labels=agent_labels,
            role=agent.name,
            subjects=[{"kind": "ServiceAccount", "name": agent.name, "namespace": agent.namespace}],
        ),
        spec(
            "DaemonSet",
            "daemonset",
            source,
            name=agent.name,
            namespace=agent.namespace,
            labels=agent_labels,
            selector={"app": agent.name},
            pod_labels=agent_labels,
            pod=pod,
            annotations={EXEMPTION_ANNOTATION: EXEMPTION_REASON},
        ),
        spec(
            "Service",
            "service",
            source,
            name=agent.name,
            namespace=agent.namespace,
            labels=agent_labels,
            selector={"app": agent.name},
            headless=False,
            internal_traffic_policy="Local",
            ports=[
                {"name": "otlp-grpc", "port": agent.ports.otlp_grpc, "targetPort": "otlp-grpc", "protocol": "TCP"},
                {"name": "otlp-http", "port": agent.ports.otlp_http, "targetPort": "otlp-http", "protocol": "TCP"},
            ],
        ),
    ]


def _tempo_config(tempo: Tempo) -> str:
    path = tempo.storage_path.rstrip("/")
    return config_text(
        {
            "server": {"http_listen_port": tempo.ports.http},
            "distributor": {
                "receivers": {
                    "otlp": {"protocols": {"grpc": {"endpoint": f"0.0.0.0:{tempo.ports.otlp_grpc}"}}},
                    "jaeger": {"protocols": {"grpc": {"endpoint": f"0.0.0.0:{tempo.ports.jaeger_grpc}"}}},
                }
            },
            "ingester": {"max_block_duration": "5m"},
            "compactor": {"compaction": {"block_retention": "48h"}},
            "storage": {
                "trace": {"backend": "local", "local": {"path": f"{path}/traces"}, "wal": {"path": f"{path}/wal"}}
            },
        }
    )


def _tempo(tempo: Tempo) -> list[Spec]:
    source = ("observability", "tempo")
    tempo_labels = labels(tempo.name, "observability")
    config_name = f"{tempo.name}-config"
    container = {
        "name": tempo.name,
        "image": tunable(source + ("image",), tempo.image, Tempo, "image"),
        "args": ["-config.file=/etc/tempo/tempo.yaml", f"-mem-ballast-size-mbs={tempo.mem_ballast_mb}"],
        "volumeMounts": [
            {"name": "config", "mountPath": "/etc/tempo"},
            {"name": "data", "mountPath": tempo.storage_path},
        ],
        "env": [
            {"name": "TEMPO_STORAGE_TRACE_BACKEND", "value": "local"},
            {"name": "TEMPO_STORAGE_TRACE_LOCAL_PATH", "value": tempo.storage_path},
        ],
        "resources": resources(tempo.resources, source),
        "ports": [
            {"containerPort": tempo.ports.http, "name": "http", "protocol": "TCP"},
            {"containerPort": tempo.ports.otlp_grpc, "name": "otlp-grpc", "protocol": "TCP"},
            {"containerPort": tempo.ports.jaeger_grpc, "name": "jaeger-grpc", "protocol": "TCP"},
        ],
        "livenessProbe": http_probe("/ready", "http", delay=30),
        "readinessProbe": http_probe("/ready", "http", delay=15),
        "securityContext": container_security(),
    }
    pod = {
        "securityContext": pod_security(TEMPO_UID),
        "automountServiceAccountToken": False,
        "containers": [container],
        "volumes": [{"name": "config", "configMap": {"name": config_name}}],
    }
    claims = [
        {
            "metadata": {"name": "data"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": tempo.storage_size}}},
        }
    ]
    return [
        spec(
            "ConfigMap",
            "configmap",
            source,
            name=config_name,
            namespace=tempo.namespace,
            labels=tempo_labels,
            data={"tempo.yaml": _tempo_config(tempo)},
        ),
        spec(
            "StatefulSet",
            "statefulset",
            source,
            name=tempo.name,
            namespace=tempo.namespace,
            labels=tempo_labels,
            selector={"app": tempo.name},
            pod_labels=tempo_labels,
            service_name=tempo.name,
            replicas=tempo.replicas,
            pod_management_policy=None,
            pod=pod,
            claims=claims,
        ),
        spec(
            "Service",
            "service",
            source,
            name=tempo.name,
            namespace=tempo.namespace,
            labels=tempo_labels,
            selector={"app": tempo.name},
            headless=False,
            ports=[
                {"name": "http", "port": tempo.ports.http, "targetPort": "http", "protocol": "TCP"},
                {"name": "otlp-grpc", "port": tempo.ports.otlp_grpc, "targetPort": "otlp-grpc", "protocol": "TCP"},
                {
                    "name": "jaeger-grpc",
                    "port": tempo.ports.jaeger_grpc,
                    "targetPort": "jaeger-grpc",
                    "protocol": "TCP",
                },
            ],
        ),
    ]
