"""Grafana's dashboards, generated from the topology: the pipeline (each processing service's
replicas, restarts, autoscaler and GPUs, from kube-state-metrics), the nodes and VMs (from the
node exporters), MinIO (capacity per drive and bucket, requests). A dashboard is there only when
the exporters its panels read are scraped, and each query selects only metrics those exporters
serve (plan/catalogue.py; a test checks every panel).

Not here: request rate, latency and errors per processing service. The seed's services expose
no metrics the profile declares; a service whose `metrics` name an exporter can be added."""

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


def _pipeline(topo: Topology) -> list[tuple[str, list[tuple[str, str]], str]]:
    ns = topo.processing.namespace
    panels = []
    for s in topo.processing.services:
        pods = f'namespace="{ns}", pod=~"{s.name}-.+"'
        deployments = f'namespace="{ns}", deployment=~"{s.name}|{s.name}-.+"'
        panels.append(
            (
                f"{s.name}: available replicas",
                [
                    (
                        f"sum by (deployment) (kube_deployment_status_replicas_available{{{deployments}}})",
                        "{{deployment}}",
                    )
                ],
                "short",
            )
        )
        restarts = [(f"sum(increase(kube_pod_container_status_restarts_total{{{pods}}}[1h]))", "restarts in 1h")]
        if s.autoscaling is not None:
            hpa = f'namespace="{ns}", horizontalpodautoscaler=~"{s.name}|{s.name}-.+"'
            restarts += [
                (f"sum(kube_horizontalpodautoscaler_status_current_replicas{{{hpa}}})", "autoscaled replicas"),
                (f"sum(kube_horizontalpodautoscaler_spec_max_replicas{{{hpa}}})", "autoscaler maximum"),
            ]
        if s.gpu:
            restarts.append(
                (
                    f'sum(kube_pod_container_resource_requests{{{pods}, resource="nvidia_com_gpu"}})',
                    "GPUs held",
                )
            )
        panels.append((f"{s.name}: restarts, scaling, GPUs", restarts, "short"))
    return panels


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


def dashboards(topo: Topology) -> dict[str, str]:
    """Each dashboard's JSON by its file name (its uid)."""
    scraped = targets(topo)
    exporters = {t.exporter for t in scraped}
    result = {}
    if "kube-state-metrics" in exporters and topo.processing.services:
        result["imageflow-pipeline"] = _dashboard("imageflow-pipeline", "ImageFlow pipeline", _pipeline(topo))
    node_jobs = sorted(t.job for t in scraped if t.exporter == "node-exporter")
    if node_jobs:
        result["imageflow-nodes"] = _dashboard("imageflow-nodes", "ImageFlow nodes and VMs", _nodes(node_jobs))
    if "minio" in exporters:
        result["imageflow-minio"] = _dashboard("imageflow-minio", "ImageFlow MinIO", _minio())
    return result
