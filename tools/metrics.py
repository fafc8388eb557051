#!/usr/bin/env python3
"""Produce schemas/metrics/: for each exporter the output scrapes, the names of the metrics it
serves, at the version the profiles pin. Alerts and dashboards may only name these (a test
checks), so a query can never ask for a metric no declared target exposes.

Each list comes from the exporter's own Go module, fetched with `go mod download` (the module
proxy, checked against the Go checksum database) at the pinned version and held to the pinned
go.sum `h1:` hash:

- blackbox-exporter: each probe's gauges, a `Name: "probe_..."` literal in prober/*.go.
- cadvisor: the kubelet's container metrics; each a `name: "container_..."` (or machine_)
  literal in metrics/prometheus*.go of the cAdvisor module Kubernetes 1.28 builds in.
- kube-state-metrics: every metric is a string literal `"kube_..."` in internal/store/*.go.
- kafka-exporter: not on the Go module proxy either; its names are listed below, by hand, from
  its README.
- dcgm-exporter: NVIDIA's DCGM exporter serves the fields of the counters file the output gives
  it, exactly (imageflow_gen's plan/exporters.py GPU_COUNTERS); its module is not on the proxy.
- istio-proxy: the standard metrics of Istio's sidecars (the proxy is C++, no Go module); listed
  below, by hand, from Istio's metrics reference, for the Istio whose CRDs the gates hold the
  output to (schemas/crds/sources.json).
- minio: the server's module is not on the Go module proxy; the names this project reads are
  listed below, by hand, from MinIO's own metrics reference.
- node-exporter: most names are built at run time (from /proc/meminfo's keys, the network
  devices' fields), so the script builds the exporter from its module, runs it on this Linux
  machine with its default collectors, and lists the `# TYPE` names it serves. A collector
  that finds nothing on the machine lists nothing: the list is what a Linux host serves.

    python tools/metrics.py              rewrite schemas/metrics/<exporter>.json
    python tools/metrics.py --out DIR    write them into DIR instead
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from crds import download  # the same pinned, sum-checked fetch (tools/ is on the path)

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "schemas" / "metrics"


@dataclass(frozen=True)
class Source:
    exporter: str
    module: str
    version: str
    sum: str  # the go.sum h1: hash of the module zip
    license: str
    how: str


SOURCES = (
    Source(
        "kube-state-metrics",
        "k8s.io/kube-state-metrics/v2",
        "v2.13.0",
        "h1:g5OV0cwrDKvyrQApYxI7Ny+vFUgU3X6MYrnIzdCAdNU=",
        "Apache-2.0",
        'the string literals "kube_..." in internal/store/*.go (tests excluded)',
    ),
    Source(
        "blackbox-exporter",
        "github.com/prometheus/blackbox_exporter",
        "v0.25.0",
        "h1:cInPsiPsILpwYbir9A9cwJ8pjcf4/cGOuGR0BstQtuc=",
        "Apache-2.0",
        'the names "probe_..." of the gauges in prober/*.go (tests excluded)',
    ),
    Source(
        "cadvisor",
        "github.com/google/cadvisor",
        "v0.47.3",
        "h1:5XKTHBduWlBjmgw07uwEiC+Xa/FRd0MZI37oqlTagO0=",
        "Apache-2.0",
        'the names "container_..." and "machine_..." in metrics/prometheus*.go (tests excluded): the '
        "cAdvisor Kubernetes 1.28's kubelet builds in (its go.mod), served at /metrics/cadvisor",
    ),
    Source(
        "kafka-exporter",
        "github.com/danielqsj/kafka_exporter",
        "v1.8.0",
        "",
        "Apache-2.0",
        "listed here by hand from the exporter's README (its metrics tables): the module is not served by the "
        "Go module proxy, so these names are not checked against it",
    ),
    Source(
        "dcgm-exporter",
        "github.com/NVIDIA/dcgm-exporter",
        "3.3.7-3.4.2-ubuntu22.04",
        "",
        "Apache-2.0",
        "the fields of the counters file the output configures (imageflow_gen.plan.exporters.GPU_COUNTERS), which "
        "the exporter serves and nothing else; its module is not served by the Go module proxy",
    ),
    Source(
        "istio-proxy",
        "github.com/istio/proxy",
        "1.24.2",
        "",
        "Apache-2.0",
        "listed here by hand from Istio's standard metrics reference (istio.io/latest/docs/reference/config/"
        "metrics), each distribution as its histogram's series: the proxy is C++, not served by the Go module "
        "proxy, so these names are not checked against it",
    ),
    Source(
        "minio",
        "github.com/minio/minio",
        "RELEASE.2024-06-13T22-53-53Z",
        "",
        "AGPL-3.0-or-later",
        "listed here by hand from MinIO's metrics v2 reference (docs/metrics/prometheus/list.md): the "
        "server's module is not served by the Go module proxy, so these names are not checked against it",
    ),
    Source(
        "node-exporter",
        "github.com/prometheus/node_exporter",
        "v1.8.2",
        "h1:G8NryhgftPSXTnD+DuaNZTHDqmHF3zLWgPeG5RUtcHg=",
        "Apache-2.0",
        "built from the module and run on Linux with its default collectors: the # TYPE names it served",
    ),
)


def kube_state_metrics(module: Path, _workdir: Path) -> set[str]:
    names: set[str] = set()
    for path in sorted((module / "internal" / "store").glob("*.go")):
        if not path.name.endswith("_test.go"):
            names |= set(re.findall(r'"(kube_[a-z0-9_]+)"', path.read_text()))
    return names


def blackbox_exporter(module: Path, _workdir: Path) -> set[str]:
    names: set[str] = set()
    for path in sorted((module / "prober").glob("*.go")):
        if not path.name.endswith("_test.go"):
            names |= set(re.findall(r'Name:\s+"(probe_[a-z0-9_]+)"', path.read_text()))
    return names


def cadvisor(module: Path, _workdir: Path) -> set[str]:
    names: set[str] = set()
    for path in sorted((module / "metrics").glob("prometheus*.go")):
        if not path.name.endswith("_test.go"):
            names |= set(re.findall(r'name:\s+"((?:container|machine)_[a-z0-9_]+)"', path.read_text()))
    return names


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def node_exporter(module: Path, workdir: Path) -> set[str]:
    binary = workdir / "node_exporter"
    env = {**os.environ, "GOFLAGS": "-mod=mod", "CGO_ENABLED": "0"}
    subprocess.run(["go", "build", "-o", str(binary), "."], cwd=module, env=env, check=True)
    port = _free_port()
    proc = subprocess.Popen(
        [str(binary), f"--web.listen-address=127.0.0.1:{port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        for _ in range(50):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
                    text = response.read().decode()
                break
            except OSError:
                time.sleep(0.2)
        else:
            sys.exit("metrics: node_exporter did not answer")
    finally:
        proc.terminate()
        proc.wait()
    return {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}


# MinIO's v2 names this project may read: the cluster's capacity, each drive's, each bucket's,
# the S3 requests and traffic, and what is offline. Names only (no prose from the reference).
MINIO_NAMES = (
    "minio_bucket_usage_object_total",
    "minio_bucket_usage_total_bytes",
    "minio_bucket_traffic_received_bytes",
    "minio_bucket_traffic_sent_bytes",
    "minio_cluster_capacity_raw_free_bytes",
    "minio_cluster_capacity_raw_total_bytes",
    "minio_cluster_capacity_usable_free_bytes",
    "minio_cluster_capacity_usable_total_bytes",
    "minio_cluster_drive_offline_total",
    "minio_cluster_drive_online_total",
    "minio_cluster_nodes_offline_total",
    "minio_cluster_nodes_online_total",
    "minio_cluster_usage_object_total",
    "minio_cluster_usage_total_bytes",
    "minio_node_drive_free_bytes",
    "minio_node_drive_total_bytes",
    "minio_node_drive_used_bytes",
    "minio_s3_requests_errors_total",
    "minio_s3_requests_total",
    "minio_s3_traffic_received_bytes",
    "minio_s3_traffic_sent_bytes",
)


# kafka_exporter's names: the brokers, each topic partition's offsets and replicas, each
# consumer group's offsets and lag.
KAFKA_EXPORTER_NAMES = (
    "kafka_brokers",
    "kafka_consumergroup_current_offset",
    "kafka_consumergroup_current_offset_sum",
    "kafka_consumergroup_lag",
    "kafka_consumergroup_lag_sum",
    "kafka_consumergroup_members",
    "kafka_topic_partition_current_offset",
    "kafka_topic_partition_in_sync_replica",
    "kafka_topic_partition_leader",
    "kafka_topic_partition_leader_is_preferred",
    "kafka_topic_partition_oldest_offset",
    "kafka_topic_partition_replicas",
    "kafka_topic_partition_under_replicated_partition",
    "kafka_topic_partitions",
)


def kafka_exporter(_module: Path, _workdir: Path) -> set[str]:
    return set(KAFKA_EXPORTER_NAMES)


# Istio's standard metrics, served by every sidecar's Envoy at /stats/prometheus: requests
# (HTTP, HTTP/2, gRPC) and their duration and sizes (histograms), gRPC messages, TCP traffic.
ISTIO_COUNTERS = (
    "istio_requests_total",
    "istio_request_messages_total",
    "istio_response_messages_total",
    "istio_tcp_connections_closed_total",
    "istio_tcp_connections_opened_total",
    "istio_tcp_received_bytes_total",
    "istio_tcp_sent_bytes_total",
)
ISTIO_DISTRIBUTIONS = ("istio_request_bytes", "istio_request_duration_milliseconds", "istio_response_bytes")


def istio_proxy(_module: Path, _workdir: Path) -> set[str]:
    series = {f"{name}_{part}" for name in ISTIO_DISTRIBUTIONS for part in ("bucket", "count", "sum")}
    return set(ISTIO_COUNTERS) | series


def dcgm_exporter(_module: Path, _workdir: Path) -> set[str]:
    from imageflow_gen.plan.exporters import GPU_COUNTERS  # the counters file the output writes

    return {field for field, _, _ in GPU_COUNTERS}


def minio(_module: Path, _workdir: Path) -> set[str]:
    return set(MINIO_NAMES)


LISTERS = {
    "blackbox-exporter": blackbox_exporter,
    "cadvisor": cadvisor,
    "dcgm-exporter": dcgm_exporter,
    "istio-proxy": istio_proxy,
    "kafka-exporter": kafka_exporter,
    "kube-state-metrics": kube_state_metrics,
    "minio": minio,
    "node-exporter": node_exporter,
}


def produce(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        (workdir / "go.mod").write_text("module metrics\n\ngo 1.22\n")
        for source in SOURCES:
            module = download(source, workdir, "metrics") if source.sum else workdir
            names = LISTERS[source.exporter](module, workdir)
            document = {
                "exporter": source.exporter,
                "module": source.module,
                "version": source.version,
                "sum": source.sum,
                "license": source.license,
                "how": source.how,
                "names": sorted(names),
            }
            (out / f"{source.exporter}.json").write_text(json.dumps(document, indent=2) + "\n")
            print(f"{source.exporter} {source.version}: {len(names)} metrics")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    produce(parser.parse_args().out)


if __name__ == "__main__":
    main()
