"""Prometheus's exporters as workloads: the node exporter's per-node workload in its namespace
(a DaemonSet on every cluster node) and one on each of its VMs, and the Kafka exporter on the
Kafka VM, each published on its VM's address. Prometheus's configuration (plan/monitoring.py),
the compose stacks (plan/stacks.py), their capacity (plan/vms.py) and the diagram take them
from here, the one place they are derived."""

from __future__ import annotations

import re

from ..errors import Path
from ..model import Topology
from ..model.checks import node_exporter_service, node_exporter_vms
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
