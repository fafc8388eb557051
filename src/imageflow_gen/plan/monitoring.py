"""Prometheus in imageflow-monitoring (seed 8.1.2: "Prometheus, Grafana"): the server as a
stateful workload (rendered by plan/workloads.render), its configuration and alert rules
generated from the topology, and the service discovery's permissions, limited to the
namespaces it scrapes.

What it scrapes is what the profile declares, and nothing else: itself, the OTel agent's two
metrics ports (the agent's `metrics_readers` must name Prometheus), and each workload's
`metrics`: its pods in the cluster (Kubernetes service discovery, kept by the workload's `app`
label and the port's name), its published port on a VM.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ..errors import Path
from ..model import Topology
from ..model.checks import kafka_clients
from ..model.observability import BlackboxExporter, KubeStateMetrics, Prometheus
from ..model.workloads import Workload
from ..shared import WARN_PERCENT
from .common import GPU_RUNTIME_CLASS, Spec, labels, meshed_namespaces, service_dns, spec
from .endpoints import published_address
from .exporters import GPU_SOURCE, KAFKA_SOURCE, cluster_node_exporter, gpu_exporter, kafka_exporter, vm_node_exporters
from .exporters import SOURCE as NODE_SOURCE
from .observability import config_text
from .storage import API_PORT, APP
from .workloads import Rendering, render, single, typed

COMPONENT = "monitoring"
SOURCE = ("observability", "prometheus")
KSM_SOURCE = (*SOURCE, "kube_state_metrics")
KSM_PORT = "http-metrics"  # the port names kube-state-metrics' own manifests use
# What kube-state-metrics reads (list and watch), the kinds the workload alerts are about.
KSM_RESOURCES = {
    "": ("nodes", "pods"),
    "apps": ("daemonsets", "deployments", "statefulsets"),
    "autoscaling": ("horizontalpodautoscalers",),
}
CONFIG_DIR = "/etc/prometheus/config"  # the ConfigMap; relative paths in it are relative to it
SECRETS_DIR = "/etc/prometheus/secrets"  # beside it: each Secret a target needs, in a folder of its name
KUBELET_JOB = "kubelet-cadvisor"
KUBELET_PORT = 10250  # the kubelet's API, K3s's too
# A service-account token and the cluster's CA, projected beside the Secrets: what the kubelets
# check Prometheus and Prometheus the kubelets by (no Secret to supply).
KUBELET_TOKEN = "kubelet"
DATA_DIR = "/prometheus"
# The port Istio's injection gives each sidecar's Envoy statistics (not redirected to Envoy's
# inbound listener: reached without mTLS, whatever the PeerAuthentication).
SIDECAR_PORT, SIDECAR_PORT_NAME = 15090, "http-envoy-prom"


@dataclass(frozen=True)
class Target:
    """A scrape job: a workload's pods (`namespace`, `app`, the port's name) or a VM's address."""

    job: str
    port: int
    path: str
    scheme: str
    source: Path  # the profile key that declares it
    namespace: str | None = None  # in the cluster: its pods
    app: str = ""  # empty: every pod of the namespace with the port
    port_name: str = ""
    address: str | None = None  # on a VM: the address its port is published on
    exporter: str | None = None  # the exporter whose metric names it serves (plan/catalogue.py)
    token: tuple[str, str] | None = None  # (Secret, key) of the bearer token it is scraped with
    ca: tuple[str, str] | None = None  # (Secret, key) of the CA its https certificate is checked by
    server_name: str | None = None  # the name that certificate is checked for (not the pod's IP)
    nodes: tuple[str, ...] = ()  # the kubelets: every node, found by node discovery, at these IPs
    probe: tuple[str, str] | None = None  # (module, address): what a blackbox exporter's pods probe


def targets(topo: Topology) -> list[Target]:
    """What Prometheus scrapes besides itself: the OTel agent's metrics (when the agent names
    Prometheus among its metrics readers), each workload's declared metrics."""
    prom = topo.observability.prometheus
    if prom is None:
        return []
    result = []
    agent = topo.observability.otel_agent
    if any(r.namespace == prom.namespace and r.pods.get("app") == prom.name for r in agent.metrics_readers):
        for port_name, port in (("metrics", agent.ports.metrics), ("prometheus", agent.ports.prometheus)):
            result.append(
                Target(
                    f"{agent.name}-{port_name}",
                    port,
                    "/metrics",
                    "http",
                    ("observability", "otel_agent", "metrics_readers"),
                    agent.namespace,
                    agent.name,
                    port_name,
                )
            )
    ksm = prom.kube_state_metrics
    if ksm is not None:
        result.append(
            Target(
                ksm.name,
                ksm.port,
                "/metrics",
                "http",
                KSM_SOURCE,
                prom.namespace,
                ksm.name,
                KSM_PORT,
                exporter="kube-state-metrics",
            )
        )
    if prom.kubelets:
        result.append(
            Target(
                KUBELET_JOB,
                KUBELET_PORT,
                "/metrics/cadvisor",
                "https",
                (*SOURCE, "kubelets"),
                exporter="cadvisor",
                token=(KUBELET_TOKEN, "token"),
                ca=(KUBELET_TOKEN, "ca.crt"),
                nodes=tuple(str(n.ip) for n in topo.cluster.nodes),
            )
        )
    if prom.sidecars:  # every pod of a meshed namespace: its sidecar's Envoy statistics
        for namespace in meshed_namespaces(topo):
            result.append(
                Target(
                    f"sidecars-{namespace}",
                    SIDECAR_PORT,
                    "/stats/prometheus",
                    "http",
                    (*SOURCE, "sidecars"),
                    namespace,
                    port_name=SIDECAR_PORT_NAME,
                    exporter="istio-proxy",
                )
            )
    bb = prom.blackbox_exporter
    if bb is not None and (edge := edge_gateway_address(topo)) is not None:
        result.append(
            Target(
                GATEWAY_CERT_JOB,
                bb.port,
                "/probe",
                "http",
                (*SOURCE, "blackbox_exporter"),
                prom.namespace,
                bb.name,
                "http",
                exporter="blackbox-exporter",
                probe=(GATEWAY_TLS_MODULE, edge),
            )
        )
    result += _minio_targets(topo)
    node_exporters = [cluster_node_exporter(topo), *vm_node_exporters(topo)]
    own = [(NODE_SOURCE, w) for w in node_exporters if w is not None]
    if (gpus := gpu_exporter(topo)) is not None:
        own.append((GPU_SOURCE, gpus))
    if (kafka := kafka_exporter(topo)) is not None:
        own.append((KAFKA_SOURCE, kafka))
    declared = [(("workloads", i, "metrics"), w) for i, w in enumerate(topo.workloads)]
    for source, w in [*own, *declared]:
        if w.metrics is None:
            continue
        found = w.port(w.metrics.port)
        if found is None:  # refused by the model's checks
            continue
        path, scheme = w.metrics.path, w.metrics.scheme
        exporter = w.metrics.exporter
        if w.namespace is not None:
            result.append(
                Target(w.name, found.port, path, scheme, source, w.namespace, w.name, found.name, exporter=exporter)
            )
        elif w.vm is not None and (published := published_address(topo, w.vm, found)) is not None:
            address, port = published
            result.append(Target(w.name, port, path, scheme, source, address=address, exporter=exporter))
    return result


# MinIO's metrics (v2): the cluster's capacity and requests from any server, each server's
# drives, each bucket's usage; each its own path.
MINIO_PATHS = {
    "cluster": "/minio/v2/metrics/cluster",
    "node": "/minio/v2/metrics/node",
    "bucket": "/minio/v2/metrics/bucket",
}


def _minio_targets(topo: Topology) -> list[Target]:
    """MinIO's three metrics paths on its servers' API port, with the bearer token from its
    Secret (and, over TLS, its CA, checked for the Service's name)."""
    minio = topo.storage.minio
    if minio.metrics_token is None:
        return []
    token = (minio.metrics_token.name, minio.metrics_token.keys["token"])
    tls = minio.tls
    return [
        Target(
            f"minio-{part}",
            minio.port,
            path,
            "https" if tls else "http",
            ("storage", "minio", "metrics_token"),
            minio.namespace,
            APP,
            API_PORT,
            exporter="minio",
            token=token,
            ca=(tls.ca.name, tls.ca.keys["ca"]) if tls else None,
            server_name=service_dns(APP, minio.namespace) if tls else None,
        )
        for part, path in MINIO_PATHS.items()
    ]


def secret_file(secret: tuple[str, str]) -> str:
    """A Secret's key as the configuration names it: relative to the configuration's folder, so
    that promtool checks the same layout wherever the files are."""
    return f"../{SECRETS_DIR.rsplit('/', 1)[1]}/{secret[0]}/{secret[1]}"


def _secrets(topo: Topology) -> list[str]:
    """The Secrets Prometheus mounts for its targets, by name (the kubelets' token is projected)."""
    return sorted({s[0] for t in targets(topo) for s in (t.token, t.ca) if s is not None} - {KUBELET_TOKEN})


def _projected(topo: Topology) -> list[dict[str, Any]]:
    """The kubelets' token and CA: a bound token of Prometheus's account, the cluster's CA."""
    if not any(t.job == KUBELET_JOB for t in targets(topo)):
        return []
    sources = [
        {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
    ]
    return [{"name": f"secret-{KUBELET_TOKEN}", "projected": {"sources": sources}}]


GATEWAY_CERT_JOB = "gateway-certificate"
GATEWAY_TLS_MODULE = "gateway_tls"


def edge_gateway_address(topo: Topology) -> str | None:
    """host:port of the edge gateway's HTTPS on the edge VM's address (None when it runs only in
    the cluster)."""
    gw = topo.edge.api_gateway
    if "vm" not in gw.runs_on:
        return None
    address = next(str(v.address) for v in topo.vms if v.name == topo.edge.vm)
    return f"{address}:{gw.https_port}"


def blackbox_config(topo: Topology) -> str:
    """blackbox.yml: a TLS connection with the gateway's server name. It reads the certificate's
    expiry, not its trust: a gateway with a private CA is probed too (nothing is sent)."""
    gw = topo.edge.api_gateway
    module = {
        "prober": "tcp",
        "timeout": "5s",
        "tcp": {"tls": True, "tls_config": {"server_name": gw.server_name, "insecure_skip_verify": True}},
    }
    return config_text({"modules": {GATEWAY_TLS_MODULE: module}})


def blackbox_workload(topo: Topology) -> tuple[Workload, Rendering]:
    prom = topo.observability.prometheus
    assert prom is not None and prom.blackbox_exporter is not None
    bb = prom.blackbox_exporter
    workload = Workload.model_validate(
        {
            "name": bb.name,
            "namespace": prom.namespace,
            "image": bb.image,
            "args": ["--config.file=/etc/blackbox/blackbox.yml", f"--web.listen-address=:{bb.port}"],
            "ports": [{"name": "http", "port": bb.port, "protocol": "http"}],
            "files": [{"name": "blackbox.yml", "path": "/etc/blackbox/blackbox.yml", "content": blackbox_config(topo)}],
            "probes": {
                "readiness": {"http": {"path": "/-/healthy", "port": "http"}},
                "liveness": {"http": {"path": "/-/healthy", "port": "http"}, "period": 30},
            },
            "resources": bb.resources,
            "node_type": prom.node_type,
            "availability": {"survives": "nothing", "reason": "one prober; its alerts wait for it"},
        }
    )
    key = (*SOURCE, "blackbox_exporter")
    return workload, single(COMPONENT, key, bb.name, bb.image, BlackboxExporter)


def target_text(t: Target, code: str = "") -> str:
    """Where a job's targets are, in words (`code`: the quote marks a Markdown reader gets)."""
    if t.namespace is not None:
        probing = f", probing {code}{t.probe[1]}{code}" if t.probe else ""
        pods = f"the pods {code}app={t.app}{code}" if t.app else "every pod"
        return f"{pods} in {code}{t.namespace}{code}, port {code}{t.port_name}{code}{probing}"
    if t.nodes:
        return f"each node's kubelet ({', '.join(f'{code}{ip}:{t.port}{code}' for ip in t.nodes)})"
    return f"{code}{t.address}:{t.port}{code}"


def scraped_namespaces(topo: Topology) -> list[str]:
    """The namespaces whose pods Prometheus discovers: its service discovery may read those only."""
    return sorted({t.namespace for t in targets(topo) if t.namespace is not None})


def config(topo: Topology) -> str:
    """prometheus.yml: the global interval, then a job per target."""
    prom = topo.observability.prometheus
    assert prom is not None
    jobs: list[dict[str, Any]] = [
        {"job_name": "prometheus", "static_configs": [{"targets": [f"localhost:{prom.port}"]}]}
    ]
    for target in targets(topo):
        job: dict[str, Any] = {"job_name": target.job, "metrics_path": target.path, "scheme": target.scheme}
        if target.probe is not None:  # the prober's pods, asked to probe one address with one module
            job["params"] = {"module": [target.probe[0]]}
        if target.namespace is not None:
            job["kubernetes_sd_configs"] = [{"role": "pod", "namespaces": {"names": [target.namespace]}}]
            job["relabel_configs"] = [
                *(
                    [{"source_labels": ["__meta_kubernetes_pod_label_app"], "regex": target.app, "action": "keep"}]
                    if target.app
                    else []
                ),
                {
                    "source_labels": ["__meta_kubernetes_pod_container_port_name"],
                    "regex": target.port_name,
                    "action": "keep",
                },
                {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
                {"source_labels": ["__meta_kubernetes_pod_node_name"], "target_label": "node"},
            ]
            if target.probe is not None:
                job["relabel_configs"] += [
                    {"target_label": "__param_target", "replacement": target.probe[1]},
                    {"target_label": "instance", "replacement": target.probe[1]},
                ]
        elif target.nodes:  # each node's kubelet, at the address node discovery gives
            job["kubernetes_sd_configs"] = [{"role": "node"}]
            job["relabel_configs"] = [{"source_labels": ["__meta_kubernetes_node_name"], "target_label": "node"}]
        else:
            job["static_configs"] = [{"targets": [f"{target.address}:{target.port}"]}]
        if target.token is not None:
            job["authorization"] = {"type": "Bearer", "credentials_file": secret_file(target.token)}
        if target.ca is not None:
            job["tls_config"] = {"ca_file": secret_file(target.ca)}
            if target.server_name is not None:  # not the address's IP, which the certificate lacks
                job["tls_config"]["server_name"] = target.server_name
        jobs.append(job)
    interval = prom.scrape_interval
    return config_text(
        {
            "global": {"scrape_interval": interval, "evaluation_interval": interval},
            # Relative to this file: beside it in the container, and wherever promtool checks it.
            "rule_files": [RULES_FILE],
            "scrape_configs": jobs,
        }
    )


RULES_FILE = "alerts.yml"
DOWN_AFTER = "5m"  # a target that does not answer this long is down
MISSING_AFTER = "10m"  # no target of a job this long: nothing is running (or nothing is found)


def alert_rules(topo: Topology) -> str:
    """alerts.yml: for every job but Prometheus's own, that its targets answer, and that it has
    targets at all (in the cluster: that discovery finds the workload's pods)."""
    rules: list[dict[str, Any]] = []
    for t in targets(topo):
        where = target_text(t)
        rules += [
            {
                "alert": "ScrapeTargetDown",
                "expr": f'up{{job="{t.job}"}} == 0',
                "for": DOWN_AFTER,
                "labels": {"severity": "warning", "job": t.job},
                "annotations": {
                    "summary": f"A target of {t.job} does not answer",
                    "description": f"Prometheus cannot scrape a target of {t.job} ({where}) for {DOWN_AFTER}.",
                },
            },
            {
                "alert": "ScrapeTargetMissing",
                "expr": f'absent(up{{job="{t.job}"}})',
                "for": MISSING_AFTER,
                "labels": {"severity": "critical", "job": t.job},
                "annotations": {
                    "summary": f"Nothing of {t.job} is scraped",
                    "description": f"Prometheus has had no target of {t.job} ({where}) for {MISSING_AFTER}.",
                },
            },
        ]
    groups = [{"name": "imageflow-scrapes", "rules": rules}]
    for name, more in (
        ("imageflow-workloads", workload_rules(topo)),
        ("imageflow-storage", storage_rules(topo)),
        ("imageflow-kafka", kafka_rules(topo)),
        ("imageflow-certificates", certificate_rules(topo)),
    ):
        if more:
            groups.append({"name": name, "rules": more})
    return config_text({"groups": groups})


PROBE_FAILING_FOR = "10m"


def certificate_rules(topo: Topology) -> list[dict[str, Any]]:
    """With the blackbox exporter: the edge gateway's certificate expiring within the warning
    and the critical days, and the probe failing (no TLS handshake: nothing to read)."""
    prom = topo.observability.prometheus
    probes = [t for t in targets(topo) if t.job == GATEWAY_CERT_JOB]
    if prom is None or prom.blackbox_exporter is None or not probes:
        return []
    bb, job = prom.blackbox_exporter, f'job="{GATEWAY_CERT_JOB}"'
    gw = topo.edge.api_gateway
    rules: list[dict[str, Any]] = [
        {
            "alert": "GatewayCertificateExpiring",
            "expr": f"probe_ssl_earliest_cert_expiry{{{job}}} - time() < {days} * 86400",
            "for": "1h",
            "labels": {"severity": severity},
            "annotations": {
                "summary": f"The edge gateway's certificate expires within {days} days",
                "description": f"The certificate {gw.server_name} serves at {{{{ $labels.instance }}}} expires "
                "in {{ $value | humanizeDuration }}: renew it.",
            },
        }
        for days, severity in ((bb.warning_days, "warning"), (bb.critical_days, "critical"))
    ]
    rules.append(
        {
            "alert": "GatewayProbeFailing",
            "expr": f"probe_success{{{job}}} == 0",
            "for": PROBE_FAILING_FOR,
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "The edge gateway's TLS cannot be probed",
                "description": f"No TLS handshake with {gw.server_name} at {{{{ $labels.instance }}}} for "
                f"{PROBE_FAILING_FOR}: the gateway is down or unreachable, and its certificate unread.",
            },
        }
    )
    return rules


UNDER_REPLICATED_FOR = "10m"
DEFAULT_MAX_LAG = 1000  # a declared kafka-exporter's (the typed one says its own)
LAG_FOR = "15m"


def kafka_rules(topo: Topology) -> list[dict[str, Any]]:
    """With the Kafka exporter: a topic with under-replicated partitions; each declared consumer
    group (a workload that consumes: its name) more than `max_lag` behind on a topic it reads."""
    prom = topo.observability.prometheus
    jobs = [t.job for t in targets(topo) if t.exporter == "kafka-exporter"]
    if prom is None or not jobs:
        return []
    max_lag = prom.kafka_exporter.max_lag if prom.kafka_exporter is not None else DEFAULT_MAX_LAG
    job = f'job=~"{"|".join(jobs)}"'
    rules: list[dict[str, Any]] = [
        {
            "alert": "KafkaUnderReplicatedPartitions",
            "expr": f"sum by (topic) (kafka_topic_partition_under_replicated_partition{{{job}}}) > 0",
            "for": UNDER_REPLICATED_FOR,
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "A Kafka topic has under-replicated partitions",
                "description": "Topic {{ $labels.topic }} has had {{ $value }} under-replicated partitions for "
                f"{UNDER_REPLICATED_FOR}: a broker is down or behind.",
            },
        }
    ]
    consumed: dict[str, list[str]] = {}  # a group's topics, wherever its workload runs (cluster, VM)
    for user in kafka_clients(topo):
        consumed.setdefault(user.name, [])
        consumed[user.name] += [t for t in user.consume if t not in consumed[user.name]]
    for name, topics_read in consumed.items():
        if not topics_read:
            continue
        topics = "|".join(topics_read)
        rules.append(
            {
                "alert": "KafkaConsumerLag",
                "expr": f'sum by (consumergroup, topic) (kafka_consumergroup_lag{{{job}, consumergroup="{name}", '
                f'topic=~"{topics}"}}) > {max_lag}',
                "for": LAG_FOR,
                "labels": {"severity": "warning", "consumergroup": name},
                "annotations": {
                    "summary": f"{name} falls behind on Kafka",
                    "description": f"Consumer group {name} has been more than {max_lag} messages behind on "
                    f"{{{{ $labels.topic }}}} for {LAG_FOR}.",
                },
            }
        )
    return rules


DRIVE_FULL_FOR = "15m"


def storage_rules(topo: Topology) -> list[dict[str, Any]]:
    """With MinIO scraped: a drive fuller than the capacity check's threshold."""
    if not any(t.job == "minio-node" for t in targets(topo)):
        return []
    job = 'job="minio-node"'
    return [
        {
            "alert": "MinioDriveFull",
            "expr": f"100 * minio_node_drive_used_bytes{{{job}}} / minio_node_drive_total_bytes{{{job}}}"
            f" > {WARN_PERCENT}",
            "for": DRIVE_FULL_FOR,
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": f"A MinIO drive is over {WARN_PERCENT}% full",
                "description": f"Drive {{{{ $labels.drive }}}} of MinIO server {{{{ $labels.server }}}} has been over "
                f"{WARN_PERCENT}% full for {DRIVE_FULL_FOR} (the capacity check's threshold).",
            },
        }
    ]


CRASH_LOOP_FOR = "15m"  # restarting this long: not a hiccup
UNAVAILABLE_FOR = "15m"  # fewer replicas than wanted this long: a rollout would have finished
AT_MAXIMUM_FOR = "15m"  # the seed's autoscalers at their maximum this long: capacity is short
NODE_NOT_READY_FOR = "5m"


def workload_rules(topo: Topology) -> list[dict[str, Any]]:
    """With kube-state-metrics: a container crash-looping, a Deployment, StatefulSet or
    DaemonSet short of replicas, an autoscaler at its maximum (when any workload autoscales), a
    GPU node not ready (when the cluster has one); all in the topology's namespaces."""
    prom = topo.observability.prometheus
    if prom is None or prom.kube_state_metrics is None:
        return []
    ns = 'namespace=~"' + "|".join(sorted(n.name for n in topo.namespaces)) + '"'

    def rule(
        alert: str,
        expr: str,
        after: str,
        severity: str,
        summary: str,
        description: str,
        more: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        return {
            "alert": alert,
            "expr": expr,
            "for": after,
            "labels": {"severity": severity, **(more or {})},
            "annotations": {"summary": summary, "description": description},
        }

    rules = [
        rule(
            "ContainerCrashLooping",
            f'max_over_time(kube_pod_container_status_waiting_reason{{reason="CrashLoopBackOff", {ns}}}[5m]) >= 1',
            CRASH_LOOP_FOR,
            "critical",
            "A container is crash-looping",
            "Container {{ $labels.container }} of pod {{ $labels.namespace }}/{{ $labels.pod }} has been in "
            f"CrashLoopBackOff for {CRASH_LOOP_FOR}.",
        )
    ]
    for kind, available, wanted in (
        ("Deployment", "kube_deployment_status_replicas_available", "kube_deployment_spec_replicas"),
        ("StatefulSet", "kube_statefulset_status_replicas_ready", "kube_statefulset_replicas"),
        ("DaemonSet", "kube_daemonset_status_number_available", "kube_daemonset_status_desired_number_scheduled"),
    ):
        rules.append(
            rule(  # one alert, told apart by the kind's label
                "WorkloadReplicasUnavailable",
                f"{available}{{{ns}}} < {wanted}{{{ns}}}",
                UNAVAILABLE_FOR,
                "warning",
                f"A {kind} is short of replicas",
                f"{kind} {{{{ $labels.namespace }}}}/{{{{ $labels.{kind.lower()} }}}} has had fewer available "
                f"replicas than it wants for {UNAVAILABLE_FOR}.",
                {"kind": kind},
            )
        )
    if any(w.autoscaling for w in topo.workloads) or any(s.autoscaling for s in topo.processing.services):
        rules.append(
            rule(
                "AutoscalerAtMaximum",
                f"kube_horizontalpodautoscaler_status_current_replicas{{{ns}}}"
                f" >= kube_horizontalpodautoscaler_spec_max_replicas{{{ns}}}",
                AT_MAXIMUM_FOR,
                "warning",
                "An autoscaler is at its maximum",
                "HorizontalPodAutoscaler {{ $labels.namespace }}/{{ $labels.horizontalpodautoscaler }} has run "
                f"at its maximum replicas for {AT_MAXIMUM_FOR}: the load needs more than it may add.",
            )
        )
    gpu = sorted(n.name for n in topo.cluster.nodes if n.resources.gpu > 0)
    if gpu:
        rules.append(
            rule(
                "GpuNodeNotReady",
                f'kube_node_status_condition{{condition="Ready", status="true", node=~"{"|".join(gpu)}"}} == 0',
                NODE_NOT_READY_FOR,
                "critical",
                "A GPU node is not ready",
                f"GPU node {{{{ $labels.node }}}} has not been Ready for {NODE_NOT_READY_FOR}: "
                "the workloads that need its GPU cannot run.",
            )
        )
    return rules


def prometheus_workload(topo: Topology) -> tuple[Workload, Rendering]:
    """Prometheus as a stateful workload: its data volume, its HTTP port, its ready and healthy
    endpoints as probes, its configuration from the ConfigMap, its service account."""
    prom = topo.observability.prometheus
    assert prom is not None
    workload = Workload.model_validate(
        {
            "name": prom.name,
            "namespace": prom.namespace,
            "image": prom.image,
            "kind": "stateful",
            "args": [
                f"--config.file={CONFIG_DIR}/prometheus.yml",
                f"--storage.tsdb.path={DATA_DIR}",
                f"--storage.tsdb.retention.time={prom.retention}",
                f"--web.listen-address=:{prom.port}",
                # The exemplars (a sample's trace ID) Grafana links to Tempo's traces.
                *(["--enable-feature=exemplar-storage"] if prom.grafana is not None else []),
            ],
            "ports": [{"name": "http", "port": prom.port, "protocol": "http"}],
            "volumes": [
                {
                    "name": "data",
                    "path": DATA_DIR,
                    "persistent": {"size": prom.storage_size, "storage_class": prom.storage_class},
                }
            ],
            "probes": {
                "readiness": {"http": {"path": "/-/ready", "port": "http"}, "initial_delay": 10},
                "liveness": {"http": {"path": "/-/healthy", "port": "http"}, "initial_delay": 30},
            },
            "resources": prom.resources,
            "node_type": prom.node_type,
            "availability": {"survives": "nothing", "reason": "Prometheus runs one server, its data on its node"},
        }
    )
    rendering = single(
        COMPONENT,
        SOURCE,
        prom.name,
        prom.image,
        Prometheus,
        volumes=[
            {"name": "config", "configMap": {"name": f"{prom.name}-config"}},
            *[{"name": f"secret-{name}", "secret": {"secretName": name}} for name in _secrets(topo)],
            *_projected(topo),
        ],
        mounts=[
            {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
            *[
                {"name": f"secret-{name}", "mountPath": f"{SECRETS_DIR}/{name}", "readOnly": True}
                for name in [*_secrets(topo), *([KUBELET_TOKEN] if _projected(topo) else [])]
            ],
        ],
        service_part=(),
        pod={"serviceAccountName": prom.name, "automountServiceAccountToken": True},
    )
    return workload, rendering


def ksm_workload(topo: Topology) -> tuple[Workload, Rendering]:
    """kube-state-metrics as a Deployment: the kinds it reads, its metrics and telemetry ports,
    liveness on the first, readiness (metrics gathered) on the second, its service account."""
    prom = topo.observability.prometheus
    assert prom is not None and prom.kube_state_metrics is not None
    ksm = prom.kube_state_metrics
    workload = Workload.model_validate(
        {
            "name": ksm.name,
            "namespace": prom.namespace,
            "image": ksm.image,
            "args": [
                f"--port={ksm.port}",
                f"--telemetry-port={ksm.telemetry_port}",
                "--resources=" + ",".join(sorted(r for kinds in KSM_RESOURCES.values() for r in kinds)),
            ],
            "ports": [
                {"name": KSM_PORT, "port": ksm.port, "protocol": "http"},
                {"name": "telemetry", "port": ksm.telemetry_port, "protocol": "http"},
            ],
            "probes": {
                "readiness": {"http": {"path": "/readyz", "port": "telemetry"}, "initial_delay": 5},
                "liveness": {"http": {"path": "/healthz", "port": KSM_PORT}, "initial_delay": 5},
            },
            "resources": ksm.resources,
            "node_type": prom.node_type,
            "availability": {"survives": "nothing", "reason": "one kube-state-metrics serves the alerts"},
        }
    )
    pod = {"serviceAccountName": ksm.name, "automountServiceAccountToken": True}
    return workload, single(COMPONENT, KSM_SOURCE, ksm.name, ksm.image, KubeStateMetrics, pod=pod)


def _ksm_specs(topo: Topology) -> list[Spec]:
    """kube-state-metrics: its service account, read access to the kinds it reports (cluster-wide:
    nodes are not namespaced, and one instance per namespace list would report them once per
    namespace), and the Deployment."""
    prom = topo.observability.prometheus
    if prom is None or prom.kube_state_metrics is None:
        return []
    ksm = prom.kube_state_metrics
    own = labels(ksm.name, COMPONENT)
    rules = [
        {"apiGroups": [group], "resources": list(kinds), "verbs": ["list", "watch"]}
        for group, kinds in KSM_RESOURCES.items()
    ]
    workload, how = ksm_workload(topo)
    return [
        spec("ServiceAccount", "serviceaccount", KSM_SOURCE, name=ksm.name, namespace=prom.namespace, labels=own),
        spec("ClusterRole", "clusterrole", KSM_SOURCE, name=ksm.name, labels=own, rules=rules),
        spec(
            "ClusterRoleBinding",
            "clusterrolebinding",
            KSM_SOURCE,
            name=ksm.name,
            labels=own,
            role=ksm.name,
            subjects=[{"kind": "ServiceAccount", "name": ksm.name, "namespace": prom.namespace}],
        ),
        *render(topo, workload, KSM_SOURCE, how),
    ]


def specs(topo: Topology) -> list[Spec]:
    prom = topo.observability.prometheus
    if prom is None:
        return []
    own = labels(prom.name, COMPONENT)
    workload, how = prometheus_workload(topo)
    result = [
        spec(
            "ConfigMap",
            "configmap",
            SOURCE,
            name=f"{prom.name}-config",
            namespace=prom.namespace,
            labels=own,
            data={"prometheus.yml": config(topo), RULES_FILE: alert_rules(topo)},
        ),
        spec("ServiceAccount", "serviceaccount", SOURCE, name=prom.name, namespace=prom.namespace, labels=own),
    ]
    if prom.kubelets:  # node discovery, and the kubelets' metrics (not nodes/proxy: all of the kubelet's API)
        result += [
            spec(
                "ClusterRole",
                "clusterrole",
                (*SOURCE, "kubelets"),
                name=f"{prom.name}-kubelets",
                labels=own,
                rules=[
                    {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]},
                    {"apiGroups": [""], "resources": ["nodes/metrics"], "verbs": ["get"]},
                ],
            ),
            spec(
                "ClusterRoleBinding",
                "clusterrolebinding",
                (*SOURCE, "kubelets"),
                name=f"{prom.name}-kubelets",
                labels=own,
                role=f"{prom.name}-kubelets",
                subjects=[{"kind": "ServiceAccount", "name": prom.name, "namespace": prom.namespace}],
            ),
        ]
    # Service discovery reads the pods of the namespaces it scrapes, and nothing else.
    for namespace in scraped_namespaces(topo):
        result += [
            spec(
                "Role",
                "role",
                SOURCE,
                name=f"{prom.name}-discovery",
                namespace=namespace,
                labels=own,
                rules=[{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}],
            ),
            spec(
                "RoleBinding",
                "rolebinding",
                SOURCE,
                name=f"{prom.name}-discovery",
                namespace=namespace,
                labels=own,
                role=f"{prom.name}-discovery",
                subjects=[{"kind": "ServiceAccount", "name": prom.name, "namespace": prom.namespace}],
            ),
        ]
    if prom.blackbox_exporter is not None:
        bb_workload, bb_how = blackbox_workload(topo)
        result += render(topo, bb_workload, (*SOURCE, "blackbox_exporter"), bb_how)
    node_exporter = cluster_node_exporter(topo)
    if node_exporter is not None:
        result += render(topo, node_exporter, NODE_SOURCE, replace(typed(node_exporter), component=COMPONENT))
    gpus = gpu_exporter(topo)
    if gpus is not None:  # in the NVIDIA runtime, without asking for a GPU: it sees them all, holds none
        gpu_how = replace(typed(gpus), component=COMPONENT, pod={"runtimeClassName": GPU_RUNTIME_CLASS})
        result += render(topo, gpus, GPU_SOURCE, gpu_how)
    return result + render(topo, workload, SOURCE, how) + _ksm_specs(topo)
