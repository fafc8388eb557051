"""Grafana's dashboards, generated from the topology: the pipeline (the processing services'
requests, errors and latency from their Istio sidecars, CPU and memory from the kubelets,
the GPUs' use from the GPU exporter, replicas, restarts, autoscalers and GPUs held from
kube-state-metrics, a series per pod or Deployment), the nodes and VMs (from the node
exporters, and each GPU from the GPU exporter), MinIO (capacity per drive and bucket,
requests), Kafka (messages per topic, lag per consumer group, under-replicated partitions,
from the Kafka exporter). A dashboard is there only when
the exporters its panels read are scraped, and each query selects only metrics those exporters
serve (plan/catalogue.py; a test checks every panel).

Requests are counted by the server's sidecar (`reporter="destination"`): every call reaches it,
from callers with or without a sidecar. Without a mesh in the processing namespace there are
none: the seed's services declare no metrics of their own."""

from __future__ import annotations

import json
from typing import Any

from ..model import Topology
from .monitoring import targets

PROMETHEUS = {"type": "prometheus", "uid": "prometheus"}
WIDTH, HEIGHT = 12, 8  # two panels a row


def _panel(index: int, title: str, queries: list[tuple[str, str]], unit: str) -> dict[str, Any]:
    return {
        "id": index + 1,
        "type": "timeseries",
        "title": title,
        "datasource": PROMETHEUS,
        "gridPos": {"h": HEIGHT, "w": WIDTH, "x": (index % 2) * WIDTH, "y": (index // 2) * HEIGHT},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
        "targets": [
            {"refId": chr(ord("A") + i), "datasource": PROMETHEUS, "expr": expr, "legendFormat": legend}
            for i, (expr, legend) in enumerate(queries)
        ],
    }


def _dashboard(uid: str, title: str, panels: list[tuple[str, list[tuple[str, str]], str]]) -> str:
    return json.dumps(
        {
            "uid": uid,
            "title": title,
            "tags": ["imageflow"],
            "editable": False,
            "schemaVersion": 39,
            "time": {"from": "now-6h", "to": "now"},
            "refresh": "1m",
            "timezone": "utc",
            "panels": [_panel(i, *p) for i, p in enumerate(panels)],
        },
        indent=2,
        sort_keys=True,
    )


HTTP_FAILED = ', response_code=~"5.."'
GRPC_FAILED = ', grpc_response_status!~"0|"'  # a gRPC status, not OK ("" on plain HTTP)


def _requests(namespace: str) -> list[tuple[str, list[tuple[str, str]], str]]:
    """Per Deployment, from the sidecars: requests, failures (an HTTP 5xx or a gRPC status
    other than OK, each request once) and latency."""
    server = f'reporter="destination", destination_workload_namespace="{namespace}"'

    def rate(more: str = "") -> str:
        return f"rate(istio_requests_total{{{server}{more}}}[5m])"

    failed = f"{rate(HTTP_FAILED)} or {rate(GRPC_FAILED)}"
    buckets = f"sum by (destination_workload, le) (rate(istio_request_duration_milliseconds_bucket{{{server}}}[5m]))"
    return [
        (
            "Requests per Deployment",
            [(f"sum by (destination_workload) ({rate()})", "{{destination_workload}}")],
            "reqps",
        ),
        (
            "Failed requests per Deployment (HTTP 5xx, gRPC not OK)",
            [(f"sum by (destination_workload) ({failed})", "{{destination_workload}}")],
            "reqps",
        ),
        (
            "Latency per Deployment",
            [
                (f"histogram_quantile({q}, {buckets})", f"{{{{destination_workload}}}} p{int(q * 100)}")
                for q in (0.5, 0.95)
            ],
            "ms",
        ),
    ]


def _pipeline(
    topo: Topology, exporters: set[str | None], sidecars: bool
) -> list[tuple[str, list[tuple[str, str]], str]]:
    """The processing namespace, one series per Deployment or pod: as many panels for 500
    services as for 5 (a service's release variants are its Deployments). Requests from the
    sidecars (`sidecars`: they are scraped there), CPU and memory from the kubelets' cAdvisor,
    the rest from kube-state-metrics."""
    ns = f'namespace="{topo.processing.namespace}"'
    panels = _requests(topo.processing.namespace) if sidecars else []
    if "cadvisor" in exporters:
        containers = f'{ns}, container!="", container!="POD"'
        panels += [
            (
                "CPU per pod",
                [(f"sum by (pod) (rate(container_cpu_usage_seconds_total{{{containers}}}[5m]))", "{{pod}}")],
                "short",
            ),
            (
                "Memory (working set) per pod",
                [(f"sum by (pod) (container_memory_working_set_bytes{{{containers}}})", "{{pod}}")],
                "bytes",
            ),
        ]
    if "kube-state-metrics" not in exporters:
        return panels + _gpus_per_pod(topo, exporters)
    panels += [
        (
            "Available replicas per Deployment",
            [(f"sum by (deployment) (kube_deployment_status_replicas_available{{{ns}}})", "{{deployment}}")],
            "short",
        ),
        (
            "Restarts in the last hour per pod",
            [(f"sum by (pod) (increase(kube_pod_container_status_restarts_total{{{ns}}}[1h])) > 0", "{{pod}}")],
            "short",
        ),
    ]
    if any(s.autoscaling for s in topo.processing.services):
        panels.append(
            (
                "Autoscalers: replicas and maximum",
                [
                    (
                        "sum by (horizontalpodautoscaler) "
                        f"(kube_horizontalpodautoscaler_status_current_replicas{{{ns}}})",
                        "{{horizontalpodautoscaler}}",
                    ),
                    (
                        f"sum by (horizontalpodautoscaler) (kube_horizontalpodautoscaler_spec_max_replicas{{{ns}}})",
                        "{{horizontalpodautoscaler}} maximum",
                    ),
                ],
                "short",
            )
        )
    return panels + _gpus_per_pod(topo, exporters)


def _gpus_per_pod(topo: Topology, exporters: set[str | None]) -> list[tuple[str, list[tuple[str, str]], str]]:
    """The GPUs' holders (the processing services' and the workloads' pods that ask for GPUs,
    e.g. the inference server's): what the GPU exporter says of the GPUs they hold, and what
    they hold (kube-state-metrics). The exporter's series carry the holder's `namespace` and
    `pod`, which Prometheus keeps as `exported_pod` (`pod` is the exporter's own, from
    discovery)."""
    holders = {topo.processing.namespace} if any(s.gpu for s in topo.processing.services) else set()
    holders |= {w.namespace for w in topo.workloads if w.gpu and w.namespace}
    if not holders:
        return []
    held = f'namespace=~"{"|".join(sorted(holders))}"'
    panels = []
    if "dcgm-exporter" in exporters:
        panels += [
            (
                "GPU utilisation per pod",
                [(f"max by (namespace, exported_pod) (DCGM_FI_DEV_GPU_UTIL{{{held}}})", "{{exported_pod}}")],
                "percent",
            ),
            (
                "GPU memory used per pod",
                [(f"sum by (namespace, exported_pod) (DCGM_FI_DEV_FB_USED{{{held}}})", "{{exported_pod}}")],
                "mbytes",
            ),
        ]
    if "kube-state-metrics" in exporters:
        gpu = 'resource="nvidia_com_gpu"'
        panels.append(
            (
                "GPUs held per pod",
                [(f"sum by (namespace, pod) (kube_pod_container_resource_requests{{{held}, {gpu}}})", "{{pod}}")],
                "short",
            )
        )
    return panels


def _gpus(jobs: list[str]) -> list[tuple[str, list[tuple[str, str]], str]]:
    """Each GPU of each node, held or not."""
    job = f'job=~"{"|".join(jobs)}"'
    return [
        (
            "GPU utilisation per GPU",
            [(f"avg by (node, gpu) (DCGM_FI_DEV_GPU_UTIL{{{job}}})", "{{node}} GPU {{gpu}}")],
            "percent",
        ),
        (
            "GPU memory used per GPU",
            [
                (
                    f"avg by (node, gpu) (DCGM_FI_DEV_FB_USED{{{job}}} / "
                    f"(DCGM_FI_DEV_FB_USED{{{job}}} + DCGM_FI_DEV_FB_FREE{{{job}}}))",
                    "{{node}} GPU {{gpu}}",
                )
            ],
            "percentunit",
        ),
        (
            "GPU temperature",
            [(f"max by (node, gpu) (DCGM_FI_DEV_GPU_TEMP{{{job}}})", "{{node}} GPU {{gpu}}")],
            "celsius",
        ),
        (
            "GPU power draw",
            [(f"sum by (node, gpu) (DCGM_FI_DEV_POWER_USAGE{{{job}}})", "{{node}} GPU {{gpu}}")],
            "watt",
        ),
    ]


def _nodes(jobs: list[str]) -> list[tuple[str, list[tuple[str, str]], str]]:
    job = f'job=~"{"|".join(jobs)}"'
    return [
        (
            "CPU busy",
            [(f'1 - avg by (instance) (rate(node_cpu_seconds_total{{{job}, mode="idle"}}[5m]))', "{{instance}}")],
            "percentunit",
        ),
        (
            "Memory used",
            [
                (
                    f"1 - node_memory_MemAvailable_bytes{{{job}}} / node_memory_MemTotal_bytes{{{job}}}",
                    "{{instance}}",
                )
            ],
            "percentunit",
        ),
        (
            "Root file system used",
            [
                (
                    f'1 - node_filesystem_avail_bytes{{{job}, mountpoint="/"}}'
                    f' / node_filesystem_size_bytes{{{job}, mountpoint="/"}}',
                    "{{instance}}",
                )
            ],
            "percentunit",
        ),
        ("Load (1m)", [(f"node_load1{{{job}}}", "{{instance}}")], "short"),
    ]


def _minio() -> list[tuple[str, list[tuple[str, str]], str]]:
    cluster, node, bucket = 'job="minio-cluster"', 'job="minio-node"', 'job="minio-bucket"'
    return [
        (
            "Usable capacity",
            [
                (f"max(minio_cluster_capacity_usable_total_bytes{{{cluster}}})", "total"),
                (f"max(minio_cluster_capacity_usable_free_bytes{{{cluster}}})", "free"),
            ],
            "bytes",
        ),
        (
            "Drive used",
            [
                (
                    f"minio_node_drive_used_bytes{{{node}}} / minio_node_drive_total_bytes{{{node}}}",
                    "{{server}} {{drive}}",
                )
            ],
            "percentunit",
        ),
        ("Bucket usage", [(f"max by (bucket) (minio_bucket_usage_total_bytes{{{bucket}}})", "{{bucket}}")], "bytes"),
        (
            "S3 requests",
            [
                (f"sum(rate(minio_s3_requests_total{{{cluster}}}[5m]))", "requests/s"),
                (f"sum(rate(minio_s3_requests_errors_total{{{cluster}}}[5m]))", "errors/s"),
            ],
            "reqps",
        ),
    ]


def _kafka(jobs: list[str]) -> list[tuple[str, list[tuple[str, str]], str]]:
    selector = f'job=~"{"|".join(jobs)}"'
    return [
        (
            "Messages in per topic",
            [(f"sum by (topic) (rate(kafka_topic_partition_current_offset{{{selector}}}[5m]))", "{{topic}}")],
            "short",
        ),
        (
            "Lag per consumer group and topic",
            [(f"sum by (consumergroup, topic) (kafka_consumergroup_lag{{{selector}}})", "{{consumergroup}} {{topic}}")],
            "short",
        ),
        (
            "Under-replicated partitions",
            [(f"sum by (topic) (kafka_topic_partition_under_replicated_partition{{{selector}}})", "{{topic}}")],
            "short",
        ),
        ("Brokers", [(f"kafka_brokers{{{selector}}}", "brokers")], "short"),
    ]


def dashboards(topo: Topology) -> dict[str, str]:
    """Each dashboard's JSON by its file name (its uid)."""
    scraped = targets(topo)
    exporters = {t.exporter for t in scraped}
    result = {}
    sidecars = any(t.exporter == "istio-proxy" and t.namespace == topo.processing.namespace for t in scraped)
    if (sidecars or exporters & {"kube-state-metrics", "cadvisor"}) and topo.processing.services:
        pipeline = _pipeline(topo, exporters, sidecars)
        result["imageflow-pipeline"] = _dashboard("imageflow-pipeline", "ImageFlow pipeline", pipeline)
    node_jobs = sorted(t.job for t in scraped if t.exporter == "node-exporter")
    gpu_jobs = sorted(t.job for t in scraped if t.exporter == "dcgm-exporter")
    if node_jobs or gpu_jobs:
        panels = (_nodes(node_jobs) if node_jobs else []) + (_gpus(gpu_jobs) if gpu_jobs else [])
        result["imageflow-nodes"] = _dashboard("imageflow-nodes", "ImageFlow nodes and VMs", panels)
    kafka_jobs = sorted(t.job for t in scraped if t.exporter == "kafka-exporter")
    if kafka_jobs:
        result["imageflow-kafka"] = _dashboard("imageflow-kafka", "ImageFlow Kafka", _kafka(kafka_jobs))
    if "minio" in exporters:
        result["imageflow-minio"] = _dashboard("imageflow-minio", "ImageFlow MinIO", _minio())
    return result
