"""Tracing (seed 8.1.3): the seed's otel-agent DaemonSet and tempo StatefulSet, plus what they
reference and the seed omits: their ConfigMaps, the agent's ServiceAccount and RBAC, Services."""

from __future__ import annotations

import json
from typing import Any

from ..model import Topology
from ..model.checks import LOG_DIR, KafkaUser, kafka_clients
from ..model.messaging import SASL_PROTOCOLS, TLS_PROTOCOLS
from ..model.observability import OtelAgent, Tempo
from ..model.workloads import Workload
from .messaging import K3S_NETWORK, bootstrap_servers, cluster_client, cluster_client_paths
from .workloads import Rendering, Variant, render
from .common import (
    Spec,
    disruption_budget,
    labels,
    tunable,
    service_dns,
    spec,
)

OTEL_HEALTH_PORT = 13133
HOST_PATH_REASON = "the logs pipeline reads the node's container logs (seed 8.1.3.1 mounts it read-only)"
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
    # A budget for Tempo's one replica too (maxUnavailable 1: it never blocks a drain).
    return (
        _agent(topo)
        + _tempo(topo)
        + [disruption_budget(tempo.name, tempo.namespace, ("observability", "tempo"), "observability")]
    )


def _host_volume_name(path: str) -> str:
    """/var/lib/docker/containers -> varlibdockercontainers, as the seed names its volumes."""
    return path.replace("/", "").replace("_", "").replace(".", "").lower()


def _agent_config(topo: Topology) -> str:
    agent, tempo = topo.observability.otel_agent, topo.observability.tempo
    config: dict[str, Any] = {
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
                    {"sources": [{"from": "resource_attribute", "name": "k8s.pod.uid"}]},
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
            },
            # The workloads' metrics, for the metrics readers to scrape.
            "prometheus": {
                "endpoint": f"0.0.0.0:{agent.ports.prometheus}",
                "resource_to_telemetry_conversion": {"enabled": True},
            },
        },
        "service": {
            "extensions": ["health_check"],
            "telemetry": {"metrics": {"address": f"0.0.0.0:{agent.ports.metrics}"}},
            "pipelines": {
                "traces": {"receivers": ["otlp"], "processors": _PROCESSORS, "exporters": ["otlp"]},
                "metrics": {"receivers": ["otlp"], "processors": _PROCESSORS, "exporters": ["prometheus"]},
            },
        },
    }
    if agent.logs_topic is not None:
        config["receivers"]["filelog"] = _filelog(agent)
        config["exporters"]["kafka"] = _kafka_exporter(topo, agent.logs_topic)
        config["service"]["pipelines"]["logs"] = {
            "receivers": ["otlp", "filelog"],
            "processors": _PROCESSORS,
            "exporters": ["kafka"],
        }
    return config_text(config)


_PROCESSORS = ["memory_limiter", "k8sattributes", "batch"]
# The Kafka API version the collector's client (sarama 1.43 in collector 0.97) speaks: the
# newest it knows; brokers answer older clients.
KAFKA_PROTOCOL_VERSION = "3.6.0"
# A container's log line as the runtime writes it: CRI (containerd, K3s) or Docker's JSON.
_CRI_LINE = r"^(?P<time>[^ Z]+Z) (?P<stream>stdout|stderr) (?P<logtag>[^ ]*) ?(?P<log>.*)$"
# /var/log/pods/<namespace>_<pod>_<uid>/<container>/<restart>.log
_POD_LOG_PATH = (
    r"^.*/(?P<namespace>[^_]+)_(?P<pod_name>[^_]+)_(?P<uid>[a-f0-9-]+)"
    r"/(?P<container_name>[^/]+)/(?P<restart_count>\d+)\.log$"
)
_RFC3339_NANO = "2006-01-02T15:04:05.999999999Z07:00"


def _filelog(agent: OtelAgent) -> dict[str, Any]:
    """Every container's log on the node, except the agent's own (which would loop), parsed into
    the line, its stream and the pod it came from."""
    timestamp = {"parse_from": "attributes.time", "layout_type": "gotime", "layout": _RFC3339_NANO}
    return {
        "include": [f"{LOG_DIR}/pods/*/*/*.log"],
        "exclude": [f"{LOG_DIR}/pods/{agent.namespace}_{agent.name}-*/*/*.log"],
        "start_at": "end",
        "include_file_path": True,
        "include_file_name": False,
        "operators": [
            {
                "type": "router",
                "id": "format",
                "routes": [
                    {"output": "docker", "expr": 'body matches "^\\\\{"'},
                    {"output": "cri", "expr": 'body matches "^[^ Z]+Z"'},
                ],
            },
            {"type": "json_parser", "id": "docker", "output": "path", "timestamp": timestamp},
            {"type": "regex_parser", "id": "cri", "regex": _CRI_LINE, "output": "path", "timestamp": timestamp},
            {"type": "regex_parser", "id": "path", "regex": _POD_LOG_PATH, "parse_from": 'attributes["log.file.path"]'},
            {"type": "move", "from": "attributes.log", "to": "body"},
            {"type": "move", "from": "attributes.stream", "to": 'attributes["log.iostream"]'},
            {"type": "move", "from": "attributes.namespace", "to": 'resource["k8s.namespace.name"]'},
            {"type": "move", "from": "attributes.pod_name", "to": 'resource["k8s.pod.name"]'},
            {"type": "move", "from": "attributes.uid", "to": 'resource["k8s.pod.uid"]'},
            {"type": "move", "from": "attributes.container_name", "to": 'resource["k8s.container.name"]'},
            {"type": "remove", "field": "attributes.time"},
        ],
    }


def _agent_user(topo: Topology) -> KafkaUser:
    """The agent as a Kafka client (its own user where the cluster's listener authenticates)."""
    return next(u for u in kafka_clients(topo) if u.base == ("observability", "otel_agent"))


def _kafka_exporter(topo: Topology, topic: str) -> dict[str, Any]:
    """The logs to Kafka over the cluster's listener, authenticated as the agent's own user."""
    kafka = topo.messaging.kafka
    agent = topo.observability.otel_agent
    protocol = kafka.protocol_on(K3S_NETWORK)
    exporter: dict[str, Any] = {
        "brokers": bootstrap_servers(topo).split(","),
        "protocol_version": KAFKA_PROTOCOL_VERSION,
        "topic": topic,
        "encoding": "otlp_json",
    }
    path = cluster_client_paths(topo)
    if not path:
        return exporter
    auth: dict[str, Any] = {}
    if protocol in SASL_PROTOCOLS:
        # The collector reads the password file when it loads the config (its `file` provider).
        auth["sasl"] = {
            "username": agent.name,
            "password": "${file:" + path["password"] + "}",
            "mechanism": kafka.sasl.mechanism,
        }
    if protocol in TLS_PROTOCOLS:
        auth["tls"] = {"ca_file": path["ca"]}
        if protocol == "SSL":
            auth["tls"] |= {"cert_file": path["certificate"], "key_file": path["private-key"]}
    exporter["auth"] = auth
    return exporter


def config_text(config: dict[str, Any]) -> str:
    """A config file as JSON (which YAML readers take): key-sorted, two-space indent.

    This is exactly what Helm's `toPrettyJson` writes, so the chart renders the same bytes.
    """
    return json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False)


def _master_tolerations(agent: OtelAgent) -> list[dict[str, Any]]:
    """The seed's master toleration (K3s' masters may carry either taint)."""
    if not agent.tolerate_master:
        return []
    return [
        {"key": "node-role.kubernetes.io/master", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"},
    ]


def agent_workload(topo: Topology) -> tuple[Workload, Rendering]:
    """The OTel agent as a workload (seed 8.1.3.1): per-node (a DaemonSet on every node,
    tolerating their taints), its ports, the host paths its logs pipeline reads, probed on its
    health extension, rendered by the workloads' code. What stays its own: the config generated
    from its typed keys (ConfigMap `otel-agent-config`), its service account (k8sattributes
    reads the API), the pod's identity from the downward API, the Kafka client files of its
    logs pipeline, the master toleration, the Service that carries only the OTLP ports."""
    agent = topo.observability.otel_agent
    workload = Workload.model_validate(
        {
            "name": agent.name,
            "namespace": agent.namespace,
            "image": agent.image,
            "kind": "per-node",
            "args": ["--config=/etc/otelcol-contrib/config.yaml"],
            "ports": [
                {"name": "otlp-grpc", "port": agent.ports.otlp_grpc, "protocol": "grpc"},
                {"name": "otlp-http", "port": agent.ports.otlp_http, "protocol": "http"},
                {"name": "metrics", "port": agent.ports.metrics, "protocol": "http"},
                {"name": "prometheus", "port": agent.ports.prometheus, "protocol": "http"},
                {"name": "health", "port": OTEL_HEALTH_PORT, "protocol": "http"},
            ],
            # No hostPath type, as in the seed: /var/lib/docker/containers does not exist on
            # containerd nodes.
            "volumes": [
                {
                    "name": _host_volume_name(p),
                    "path": p,
                    "read_only": True,
                    "host_path": {"path": p, "reason": HOST_PATH_REASON, "optional": True},
                }
                for p in agent.host_paths
            ],
            "probes": {
                "liveness": {"http": {"path": "/", "port": "health"}, "initial_delay": 5},
                "readiness": {"http": {"path": "/", "port": "health"}, "initial_delay": 5},
            },
            "resources": agent.resources,
        }
    )
    key = ("observability", "otel_agent")
    # The logs pipeline's Kafka client files (when the cluster's listener authenticates).
    _, kafka_volumes, kafka_mounts = cluster_client(topo, _agent_user(topo)) if agent.logs_topic else ([], [], [])
    pod: dict[str, Any] = {
        "serviceAccount": agent.name,
        "serviceAccountName": agent.name,
        "automountServiceAccountToken": True,
        "tolerations": _master_tolerations(agent),
    }
    if agent.logs_topic:
        # The runtime writes the containers' logs as root:root, mode 0640: the group root reads
        # them, so the agent needs neither root nor a capability.
        pod["securityContext"] = {"supplementalGroups": [0]}
    rendering = Rendering(
        component="observability",
        key=key,
        variants=[Variant(agent.name, {}, tunable(key + ("image",), agent.image, OtelAgent, "image"), None, False)],
        selector={"app": agent.name},
        headless=False,
        env=[{"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}} for name, path in _DOWNWARD],
        volumes=[{"name": "config", "configMap": {"name": f"{agent.name}-config"}}, *kafka_volumes],
        mounts=[{"name": "config", "mountPath": "/etc/otelcol-contrib"}, *kafka_mounts],
        service_part=(),
        pod=pod,
        service_ports=("otlp-grpc", "otlp-http"),
    )
    return workload, rendering


def _agent(topo: Topology) -> list[Spec]:
    agent = topo.observability.otel_agent
    source = ("observability", "otel_agent")
    agent_labels = labels(agent.name, "observability")
    workload, how = agent_workload(topo)
    return [
        spec(
            "ConfigMap",
            "configmap",
            source,
            name=f"{agent.name}-config",
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
        *render(topo, workload, source, how),
        *_metrics_service(agent, agent_labels, source),
    ]


def _metrics_service(agent: OtelAgent, agent_labels: dict[str, str], source: tuple[str, ...]) -> list[Spec]:
    """Every agent's metrics, for the metrics readers: a headless Service (a scraper reads each
    node's agent, not one chosen by the Service)."""
    if not agent.metrics_readers:
        return []
    return [
        spec(
            "Service",
            "service",
            source + ("metrics_readers",),
            name=f"{agent.name}-metrics",
            namespace=agent.namespace,
            labels=agent_labels,
            selector={"app": agent.name},
            headless=True,
            ports=[
                {"name": "metrics", "port": agent.ports.metrics, "targetPort": "metrics", "protocol": "TCP"},
                {"name": "prometheus", "port": agent.ports.prometheus, "targetPort": "prometheus", "protocol": "TCP"},
            ],
        )
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


def tempo_workload(topo: Topology) -> tuple[Workload, Rendering]:
    """Tempo as a workload (seed 8.1.3.2): a StatefulSet with its trace volume, its three ports
    and its probes, rendered by the workloads' code; its config (generated from the typed keys)
    comes from the seed's ConfigMap `tempo-config`, mounted as the seed mounts it."""
    tempo = topo.observability.tempo
    workload = Workload.model_validate(
        {
            "name": tempo.name,
            "namespace": tempo.namespace,
            "image": tempo.image,
            "kind": "stateful",
            "replicas": tempo.replicas,
            "args": ["-config.file=/etc/tempo/tempo.yaml", f"-mem-ballast-size-mbs={tempo.mem_ballast_mb}"],
            "ports": [
                {"name": "http", "port": tempo.ports.http, "protocol": "http"},
                {"name": "otlp-grpc", "port": tempo.ports.otlp_grpc, "protocol": "grpc"},
                {"name": "jaeger-grpc", "port": tempo.ports.jaeger_grpc, "protocol": "grpc"},
            ],
            "env": [
                {"name": "TEMPO_STORAGE_TRACE_BACKEND", "value": "local"},
                {"name": "TEMPO_STORAGE_TRACE_LOCAL_PATH", "value": tempo.storage_path},
            ],
            "volumes": [
                {
                    "name": "data",
                    "path": tempo.storage_path,
                    "persistent": {"size": tempo.storage_size, "storage_class": tempo.storage_class},
                }
            ],
            "probes": {
                "liveness": {"http": {"path": "/ready", "port": "http"}, "initial_delay": 30},
                "readiness": {"http": {"path": "/ready", "port": "http"}, "initial_delay": 15},
            },
            "resources": tempo.resources,
        }
    )
    key = ("observability", "tempo")
    rendering = Rendering(
        component="observability",
        key=key,
        variants=[
            Variant(tempo.name, {}, tunable(key + ("image",), tempo.image, Tempo, "image"), tempo.replicas, False)
        ],
        selector={"app": tempo.name},
        headless=False,  # the seed's Service `tempo`, which its StatefulSet names
        volumes=[{"name": "config", "configMap": {"name": f"{tempo.name}-config"}}],
        mounts=[{"name": "config", "mountPath": "/etc/tempo"}],
        service_part=(),
    )
    return workload, rendering


def _tempo(topo: Topology) -> list[Spec]:
    tempo = topo.observability.tempo
    source = ("observability", "tempo")
    workload, how = tempo_workload(topo)
    config = spec(
        "ConfigMap",
        "configmap",
        source,
        name=f"{tempo.name}-config",
        namespace=tempo.namespace,
        labels=labels(tempo.name, "observability"),
        data={"tempo.yaml": _tempo_config(tempo)},
    )
    return [config, *render(topo, workload, source, how)]
