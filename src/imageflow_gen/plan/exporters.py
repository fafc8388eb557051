"""Prometheus's exporters as workloads: the node exporter's per-node workload in its namespace
(a DaemonSet on every cluster node) and one on each of its VMs, the GPU exporter on the GPU
nodes, and the Kafka exporter on the
Kafka VM, each published on its VM's address. Prometheus's configuration (plan/monitoring.py),
the compose stacks (plan/stacks.py), their capacity (plan/vms.py) and the diagram take them
from here, the one place they are derived."""

from __future__ import annotations

import re

from ..errors import Path
from ..model import Topology
from ..model.checks import gpu_node_type, node_exporter_service, node_exporter_vms
from ..model.workloads import Workload

SOURCE: Path = ("observability", "prometheus", "node_exporter")
KAFKA_SOURCE: Path = ("observability", "prometheus", "kafka_exporter")
PORT_NAME = "metrics"
HOST = "/host"  # where the host's /proc, /sys and / are mounted, read-only


def _common(topo: Topology, where: str) -> dict[str, object]:
    prom = topo.observability.prometheus
    assert prom is not None and prom.node_exporter is not None
    ne = prom.node_exporter
    return {
        "image": ne.image,
        "args": [f"--path.procfs={HOST}/proc", f"--path.sysfs={HOST}/sys", f"--path.rootfs={HOST}/root"],
        "metrics": {"port": PORT_NAME, "exporter": "node-exporter"},
        "volumes": [
            {
                "name": name,
                "path": f"{HOST}/{name}",
                "read_only": True,
                "host_path": {"path": path, "reason": f"the {where}'s {what}"},
            }
            for name, path, what in (
                ("proc", "/proc", "kernel statistics"),
                ("sys", "/sys", "hardware statistics"),
                ("root", "/", "file system usage"),
            )
        ],
        "resources": ne.resources,
    }


def cluster_node_exporter(topo: Topology) -> Workload | None:
    """The DaemonSet's workload: one pod on every node, tolerating every node's taints."""
    prom = topo.observability.prometheus
    if prom is None or prom.node_exporter is None:
        return None
    ne = prom.node_exporter
    return Workload.model_validate(
        {
            "name": ne.name,
            "description": "the cluster nodes' CPU, memory, load and file systems",
            "namespace": ne.namespace,
            "kind": "per-node",
            "ports": [{"name": PORT_NAME, "port": ne.port, "protocol": "http"}],
            "probes": {
                "readiness": {"http": {"path": "/metrics", "port": PORT_NAME}},
                "liveness": {"http": {"path": "/metrics", "port": PORT_NAME}, "period": 30},
            },
            **_common(topo, "node"),
        }
    )


GPU_SOURCE: Path = ("observability", "prometheus", "gpu_exporter")
GPU_COUNTERS_FILE = "/etc/dcgm-exporter/counters.csv"
POD_RESOURCES = "/var/lib/kubelet/pod-resources"  # the kubelet's socket: which pod holds each GPU
# The DCGM fields the exporter serves (its counters file, field, type, help), nothing else: what
# the dashboards read, all from NVML, none a profiling field (those need CAP_SYS_ADMIN).
# tools/metrics.py lists these names in schemas/metrics/dcgm-exporter.json.
GPU_COUNTERS = (
    ("DCGM_FI_DEV_GPU_UTIL", "gauge", "GPU utilisation (in %)."),
    ("DCGM_FI_DEV_MEM_COPY_UTIL", "gauge", "Memory utilisation (in %)."),
    ("DCGM_FI_DEV_FB_USED", "gauge", "Frame buffer memory used (in MiB)."),
    ("DCGM_FI_DEV_FB_FREE", "gauge", "Frame buffer memory free (in MiB)."),
    ("DCGM_FI_DEV_GPU_TEMP", "gauge", "GPU temperature (in C)."),
    ("DCGM_FI_DEV_POWER_USAGE", "gauge", "Power draw (in W)."),
    ("DCGM_FI_DEV_XID_ERRORS", "gauge", "Value of the last XID error encountered."),
)


def gpu_counters() -> str:
    """The exporter's counters file (CSV: field, Prometheus type, help)."""
    lines = ["# DCGM field, Prometheus metric type, help message"]
    lines += [f"{field}, {kind}, {text}" for field, kind, text in GPU_COUNTERS]
    return "\n".join(lines) + "\n"


def gpu_exporter(topo: Topology) -> Workload | None:
    """The DaemonSet's workload on the GPU nodes: root (the kubelet's pod-resources socket is
    root's), the NVIDIA runtime showing it every GPU (plan/monitoring.py sets the runtime class;
    it asks for no GPU, so holds none), its series labelled with the pod that holds the GPU."""
    prom = topo.observability.prometheus
    if prom is None or prom.gpu_exporter is None:
        return None
    ge = prom.gpu_exporter
    return Workload.model_validate(
        {
            "name": ge.name,
            "description": "each GPU's utilisation, memory, temperature and power, and the pod holding it",
            "namespace": ge.namespace,
            "kind": "per-node",
            "node_type": gpu_node_type(topo),
            "image": ge.image,
            "args": [f"--collectors={GPU_COUNTERS_FILE}", f"--address=:{ge.port}", "--kubernetes"],
            "env": [{"name": "NVIDIA_VISIBLE_DEVICES", "value": "all"}],
            "ports": [{"name": PORT_NAME, "port": ge.port, "protocol": "http"}],
            "files": [{"name": "counters.csv", "path": GPU_COUNTERS_FILE, "content": gpu_counters()}],
            "volumes": [
                {
                    "name": "pod-resources",
                    "path": POD_RESOURCES,
                    "read_only": True,
                    "host_path": {
                        "path": POD_RESOURCES,
                        "reason": "the kubelet's socket saying which pod holds each GPU",
                    },
                }
            ],
            "probes": {
                "readiness": {"http": {"path": "/health", "port": PORT_NAME}},
                "liveness": {"http": {"path": "/health", "port": PORT_NAME}, "period": 30},
            },
            "metrics": {"port": PORT_NAME, "exporter": "dcgm-exporter"},
            "resources": ge.resources,
            "security": {
                "run_as": {"uid": 0, "reason": "the kubelet's pod-resources socket and the GPUs' devices are root's"},
                "writable_root_filesystem": "DCGM's embedded host engine writes its log and state where the image "
                "puts them, not under /tmp",
            },
        }
    )


def vm_node_exporters(topo: Topology, vm: str | None = None) -> list[Workload]:
    """The node exporter's workload on each of its VMs (or on `vm` only), published on the VM's
    address; compose checks it with the image's busybox wget."""
    prom = topo.observability.prometheus
    if prom is None or prom.node_exporter is None:
        return []
    ne = prom.node_exporter
    result = []
    for name in node_exporter_vms(topo):
        if vm is not None and name != vm:
            continue
        address = next(str(v.address) for v in topo.vms if v.name == name)
        result.append(
            Workload.model_validate(
                {
                    "name": node_exporter_service(topo, name),
                    "description": f"{name}'s CPU, memory, load and file systems",
                    "vm": name,
                    "ports": [
                        {
                            "name": PORT_NAME,
                            "port": ne.port,
                            "protocol": "http",
                            "publish": {"port": ne.port, "address": address},
                        }
                    ],
                    "probes": {
                        "readiness": {
                            "exec": ["wget", "-q", "-O", "/dev/null", f"http://127.0.0.1:{ne.port}/metrics"],
                        }
                    },
                    **_common(topo, "VM"),
                }
            )
        )
    return result


def kafka_exporter(topo: Topology) -> Workload | None:
    """kafka_exporter beside the brokers: it reads every broker's INTERNAL listener (PLAINTEXT,
    the stack's network only); compose checks it with the image's busybox wget."""
    prom = topo.observability.prometheus
    if prom is None or prom.kafka_exporter is None:
        return None
    ke, kafka = prom.kafka_exporter, topo.messaging.kafka
    tag = kafka.image.rsplit(":", 1)[-1]
    address = next(str(v.address) for v in topo.vms if v.name == kafka.vm)
    return Workload.model_validate(
        {
            "name": ke.name,
            "description": "Kafka's topics, partitions and consumer groups' lag",
            "vm": kafka.vm,
            "image": ke.image,
            "args": [
                *[f"--kafka.server={b.name}:{kafka.internal_port}" for b in kafka.brokers],
                # The brokers' version, when their image's tag says it: the protocol it speaks.
                *([f"--kafka.version={tag}"] if re.fullmatch(r"[0-9]+\.[0-9]+\.[0-9]+", tag) else []),
                f"--web.listen-address=:{ke.port}",
            ],
            "ports": [
                {
                    "name": PORT_NAME,
                    "port": ke.port,
                    "protocol": "http",
                    "publish": {"port": ke.port, "address": address},
                }
            ],
            "metrics": {"port": PORT_NAME, "exporter": "kafka-exporter"},
            "probes": {
                "readiness": {"exec": ["wget", "-q", "-O", "/dev/null", f"http://127.0.0.1:{ke.port}/metrics"]},
            },
            "resources": ke.resources,
        }
    )


def vm_exporters(topo: Topology, vm: str | None = None) -> list[Workload]:
    """Prometheus's exporters on the VMs (or on `vm` only): the node exporters, the Kafka exporter."""
    kafka = kafka_exporter(topo)
    return [*vm_node_exporters(topo, vm), *([kafka] if kafka is not None and vm in (None, kafka.vm) else [])]
