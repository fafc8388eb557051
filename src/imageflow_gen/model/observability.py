"""Tracing: the OpenTelemetry agent and Grafana Tempo (seed 8.1.3); metrics: Prometheus in
imageflow-monitoring (seed 8.1.2)."""

from __future__ import annotations

from pydantic import Field

from .common import Pods, Resources, SecretRef
from .types import (
    AbsolutePath,
    Duration,
    Hostname,
    Image,
    LabelValue,
    Name,
    Port,
    Positive,
    Retention,
    ServiceName,
    Size,
    Strict,
    TopicName,
)


class OtelAgentPorts(Strict):
    """Ports of the agent."""

    otlp_grpc: Port = 4317
    """OTLP over gRPC."""
    otlp_http: Port = 4318
    """OTLP over HTTP."""
    metrics: Port = 8888
    """The collector's own Prometheus metrics."""
    prometheus: Port = 8889
    """The workloads' metrics (received over OTLP), for Prometheus to scrape."""


class OtelAgent(Strict):
    """OpenTelemetry Collector as a DaemonSet on every node (seed 8.1.3.1)."""

    name: ServiceName = "otel-agent"
    """DaemonSet, ServiceAccount and ConfigMap prefix."""
    namespace: Name
    """Namespace (seed: imageflow-observability)."""
    image: Image
    """Collector image (seed: otel/opentelemetry-collector-contrib:0.97.0)."""
    resources: Resources
    """Requests and limits."""
    ports: OtelAgentPorts = OtelAgentPorts()
    """Ports."""
    host_paths: list[AbsolutePath] = Field(default_factory=list)
    """Host directories mounted read-only (seed: /var/log, /var/lib/docker/containers), for the
    logs pipeline: it reads the containers' logs under /var/log/pods (with Docker, links into
    /var/lib/docker/containers). Needs `logs_topic`."""
    logs_topic: TopicName | None = None
    """Kafka topic the logs pipeline sends the nodes' container logs to (OTLP JSON), e.g.
    system-logs, which Kafka Connect sinks into its bucket; unset: no logs pipeline."""
    metrics_readers: list[Pods] = Field(default_factory=list)
    """Who scrapes the agent's metrics (ports `metrics` and `prometheus`), e.g. Prometheus; the
    Service publishes those ports and the policies admit exactly these pods."""
    tolerate_master: bool = True
    """Also run on master nodes (seed: yes)."""


class TempoPorts(Strict):
    """Ports of Tempo."""

    http: Port = 3200
    """HTTP API."""
    otlp_grpc: Port = 4317
    """OTLP over gRPC."""
    jaeger_grpc: Port = 14250
    """Jaeger over gRPC."""


class Tempo(Strict):
    """Grafana Tempo as a StatefulSet with local storage (seed 8.1.3.2)."""

    name: ServiceName = "tempo"
    """StatefulSet, Service and ConfigMap prefix."""
    namespace: Name
    """Namespace (seed: imageflow-observability)."""
    image: Image
    """Tempo image (seed: grafana/tempo:2.4.0)."""
    replicas: Positive = 1
    """Replicas."""
    resources: Resources
    """Requests and limits."""
    ports: TempoPorts = TempoPorts()
    """Ports."""
    storage_size: Size
    """Size of the trace volume (seed: 10Gi)."""
    storage_class: Name = "local-path"
    """StorageClass of the trace volume's claim: one with a provisioner (the seed names none; a
    claim without one waits for a default class the cluster may not have)."""
    storage_path: AbsolutePath = "/var/tempo"
    """Where traces are kept inside the container."""
    mem_ballast_mb: Positive = 1024
    """-mem-ballast-size-mbs (seed: 1024)."""
    query_clients: list[Pods] = Field(default_factory=list)
    """Who queries Tempo's HTTP API (port `http`), e.g. Grafana; the policies admit exactly these pods."""


class KubeStateMetrics(Strict):
    """kube-state-metrics beside Prometheus: the state of the topology's Deployments,
    StatefulSets, DaemonSets, pods, autoscalers and nodes as metrics, which the workload alerts
    (crash loops, unavailable replicas, an autoscaler at its maximum, a GPU node not ready) read."""

    name: ServiceName = "kube-state-metrics"
    """Deployment, Service, ServiceAccount and RBAC objects' name; its pods' `app` label."""
    image: Image
    """Its image, pinned (e.g. registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.13.0)."""
    port: Port = 8080
    """The port it serves the objects' metrics on."""
    telemetry_port: Port = 8081
    """The port it serves its own metrics and readiness on."""
    resources: Resources
    """Requests and limits."""


class NodeExporter(Strict):
    """node_exporter on every cluster node (a DaemonSet) and on the VMs (a compose service
    published on the VM's address, where the cluster reaches it): each machine's CPU, memory,
    load and file systems, read from the host's /proc, /sys and / (read-only). Without the
    host's network namespace its network counters are the container's own."""

    name: ServiceName = "node-exporter"
    """DaemonSet and Service name, its pods' `app` label; on a VM the service is `<vm>-<name>`."""
    namespace: Name
    """The DaemonSet's namespace: its pods mount host paths, so its Pod Security level must be
    privileged (e.g. imageflow-observability, the OTel agent's)."""
    image: Image
    """Its image, pinned (e.g. quay.io/prometheus/node-exporter:v1.8.2)."""
    port: Port = 9100
    """The port it serves on (on a VM: published on the VM's address)."""
    resources: Resources
    """Requests and limits, per node and per VM."""
    vms: list[Name] | None = None
    """The VMs it runs on (those with a compose stack: the edge VM and the Kafka VM); unset:
    both."""


class GpuExporter(Strict):
    """NVIDIA's DCGM exporter on every node with GPUs (a DaemonSet on their node type): each
    GPU's utilisation, memory, temperature and power, labelled with the pod that holds it (the
    kubelet's pod-resources socket says which). It sees the GPUs through the NVIDIA runtime
    without holding one, so it takes none from the processing services."""

    name: ServiceName = "dcgm-exporter"
    """DaemonSet and Service name; its pods' `app` label."""
    namespace: Name
    """The DaemonSet's namespace: its pods run as root and mount the kubelet's pod-resources
    folder, so its Pod Security level must be privileged (e.g. imageflow-observability)."""
    image: Image
    """Its image, pinned (e.g. nvcr.io/nvidia/k8s/dcgm-exporter:3.3.7-3.4.2-ubuntu22.04)."""
    port: Port = 9400
    """The port it serves on."""
    resources: Resources
    """Requests and limits, per GPU node."""


class Grafana(Strict):
    """Grafana beside Prometheus (seed 8.1.2): datasources Prometheus and (when Tempo admits
    its pods among its `query_clients`) Tempo, and dashboards generated from the topology.
    Anonymous access and sign-up are off; the admin signs in with the Secret's user and
    password."""

    name: ServiceName = "grafana"
    """Deployment and Service name; its pods' `app` label."""
    image: Image
    """Its image, pinned (e.g. docker.io/grafana/grafana:11.2.2)."""
    port: Port = 3000
    """Its HTTP port."""
    resources: Resources
    """Requests and limits."""
    admin: SecretRef
    """Secret with the admin's user name and password (keys: user, password), supplied in
    Prometheus's namespace."""
    host: Hostname | None = None
    """The gateway host it is exposed on (one of network.gateway.hosts, routed to nothing
    else); unset: reached by port-forward only."""


class KafkaExporter(Strict):
    """kafka_exporter on the Kafka VM (a compose service beside the brokers, published on the
    VM's address): each topic's offsets and replicas, each consumer group's lag. It reads the
    brokers over their INTERNAL listener on the stack's network, as kafka-init does: it takes a
    SASL password only on its command line, where any process on the VM could read it."""

    name: ServiceName = "kafka-exporter"
    """The compose service's name."""
    image: Image
    """Its image, pinned (e.g. docker.io/danielqsj/kafka-exporter:v1.8.0)."""
    port: Port = 9308
    """The port it serves on, published on the Kafka VM's address."""
    resources: Resources
    """Requests and limits."""
    max_lag: Positive = 1000
    """A consumer group (a workload that consumes) this many messages behind on a topic it reads,
    for 15 minutes, alerts."""


class BlackboxExporter(Strict):
    """blackbox_exporter beside Prometheus: it opens a TLS connection to the edge gateway (the
    API gateway on the edge VM, at the VM's address, with the gateway's server name) and reports
    its certificate's expiry, which the certificate alerts read."""

    name: ServiceName = "blackbox-exporter"
    """Deployment and Service name; its pods' `app` label."""
    image: Image
    """Its image, pinned (e.g. quay.io/prometheus/blackbox-exporter:v0.25.0)."""
    port: Port = 9115
    """Its HTTP port (Prometheus asks /probe there)."""
    resources: Resources
    """Requests and limits."""
    warning_days: Positive = 14
    """A certificate that expires within this many days raises a warning."""
    critical_days: Positive = 3
    """Within this many, a critical alert."""


class Prometheus(Strict):
    """Prometheus (seed 8.1.2: imageflow-monitoring holds "Prometheus, Grafana"): one server
    that scrapes what the topology declares: the OTel agent's metrics, and each workload's
    `metrics` (its pods in the cluster, by Kubernetes service discovery limited to their
    namespaces; its published port on a VM)."""

    name: ServiceName = "prometheus"
    """StatefulSet, Service, ServiceAccount and ConfigMap prefix; its pods' `app` label."""
    namespace: Name
    """Namespace (seed: imageflow-monitoring)."""
    image: Image
    """Prometheus image, pinned (e.g. quay.io/prometheus/prometheus:v2.53.2)."""
    port: Port = 9090
    """Its HTTP port (API and UI)."""
    resources: Resources
    """Requests and limits."""
    storage_size: Size
    """Size of the data volume."""
    storage_class: Name = "local-path"
    """StorageClass of the data volume's claim."""
    retention: Retention = "15d"
    """How long samples are kept."""
    scrape_interval: Duration = "30s"
    """How often every target is scraped (and rules evaluated)."""
    node_type: LabelValue | None = None
    """The nodes' `node-type` label to place it on."""
    grafana: Grafana | None = None
    """Grafana reading this Prometheus; unset: no dashboards."""
    kubelets: bool = True
    """Scrape each node's kubelet for its containers' CPU, memory, file system and network
    (cAdvisor, /metrics/cadvisor on port 10250) with a token of Prometheus's service account,
    which may then list nodes and read their metrics (not the kubelet's other endpoints)."""
    sidecars: bool = True
    """Scrape the Istio sidecar of every pod in each namespace with `mesh: true` (Envoy's
    /stats/prometheus on port 15090, `http-envoy-prom`): requests, errors and latency per
    workload, as the server's sidecar sees them (what the pipeline dashboard shows)."""
    blackbox_exporter: BlackboxExporter | None = None
    """blackbox_exporter, probing the edge gateway's certificate; unset: no expiry alerts."""
    kafka_exporter: KafkaExporter | None = None
    """kafka_exporter on the Kafka VM; unset: no Kafka lag nor replication alerts."""
    node_exporter: NodeExporter | None = None
    """node_exporter on the cluster's nodes and the VMs; unset: no machine metrics."""
    gpu_exporter: GpuExporter | None = None
    """NVIDIA's DCGM exporter on the GPU nodes; unset: GPUs are counted as held, not as used."""
    kube_state_metrics: KubeStateMetrics | None = None
    """kube-state-metrics in Prometheus's namespace, watching the topology's namespaces and the
    nodes; unset: no alerts on the workloads' state."""


class Observability(Strict):
    """Tracing and metrics."""

    otel_agent: OtelAgent
    """The OpenTelemetry agent."""
    tempo: Tempo
    """Tempo."""
    prometheus: Prometheus | None = None
    """Prometheus; unset: no metrics are collected."""
