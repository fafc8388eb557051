"""What each VM outside the cluster runs under Docker Compose, and in what envelope.

The compose target formats these services; the capacity check sums the same envelopes
against the VMs. Both read this one list, so neither re-derives (or re-parses) the other.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal

from ..model import Topology
from ..model.common import Resources
from ..model.quantity import parse
from .exporters import vm_exporters
from .gateway import audit_init
from .postgresql import backup_job, bootstrap_job, dump_service


@dataclass(frozen=True)
class Envelope:
    """A compose service's limits, in compose's own notation."""

    cpus: str  # e.g. "0.5"
    memory: str  # e.g. "512m" (MiB), or a whole number of bytes such as "1000b"
    pids: int
    replicas: int = 1
    one_shot: bool = False  # runs once to completion (topic creation): restarted on failure, not counted

    @property
    def cpu_cores(self) -> Decimal:
        return Decimal(self.cpus)

    @property
    def memory_bytes(self) -> Decimal:
        """The memory limit in bytes, read as compose reads it (m is MiB)."""
        match = re.fullmatch(r"([0-9.]+)([bkmg]?)", self.memory)
        if match is None:
            raise ValueError(f"{self.memory!r} is not a compose memory size")
        return Decimal(match[1]) * _UNITS[match[2]]


_UNITS = {"": 1, "b": 1, "k": 2**10, "m": 2**20, "g": 2**30}


def envelope(resources: Resources, pids: int, replicas: int = 1) -> Envelope:
    """Compose limits from Kubernetes limits, whatever quantity form they are written in."""
    memory = resources.limits.memory
    binary = re.fullmatch(r"([0-9]+)([GMK])i", memory)
    # Compose reads 512m as MiB; anything else (1e9, 0.5Gi, 64M) as a whole number of bytes.
    memory = f"{binary[1]}{binary[2].lower()}" if binary else f"{math.ceil(parse(memory))}b"
    return Envelope(format(parse(resources.limits.cpu).normalize(), "f"), memory, pids, replicas)


def edge_services(topo: Topology) -> dict[str, Envelope]:
    """The edge components that run on the edge VM, by name (and the gateway's audit volume's
    set-up)."""
    edge = topo.edge
    wanted = ((edge.backend_api, 512), (edge.web_ui, 128), (edge.api_gateway, 256))
    result = {
        c.name: envelope(c.resources, pids, c.replicas if c is edge.backend_api else 1)
        for c, pids in wanted
        if "vm" in c.runs_on
    }
    if "vm" in edge.api_gateway.runs_on:  # gives the WAF's audit volume to the gateway's user
        result[audit_init(edge.api_gateway)] = Envelope("0.1", "32m", 16, one_shot=True)
    return result


def kafka_services(topo: Topology) -> dict[str, Envelope]:
    """The brokers, topic creation, Kafka Connect and its set-up job on the Kafka VM, by name."""
    kafka = topo.messaging.kafka
    services = {b.name: Envelope("2", f"{kafka.heap_mb * 2}m", 4096) for b in kafka.brokers}
    services["kafka-init"] = Envelope("0.5", "512m", 256, one_shot=True)
    if kafka.connect:
        # 1.5 CPUs: three brokers' 6 and this leave the Kafka VM's exporters room in its 8.
        services["kafka-connect"] = Envelope("1.5", "2g", 1024)
        services["kafka-connect-init"] = Envelope("0.25", "64m", 64, one_shot=True)
    return services


def workload_services(topo: Topology, vm: str) -> dict[str, Envelope]:
    """The typed workloads in `vm`'s compose stack (the node exporter's among them), by name."""
    placed = [*(w for w in topo.workloads if w.vm == vm), *vm_exporters(topo, vm)]
    return {w.name: envelope(w.resources, 1024, w.replicas) for w in placed}


def postgres_services(topo: Topology, vm: str) -> dict[str, Envelope]:
    """The PostgreSQL store's services when it runs on `vm`: the server, its bootstrap, and the
    backup's dump and upload (one-shot, started by cron)."""
    pg = topo.storage.postgresql
    if pg is None or pg.vm != vm:
        return {}
    services = {
        pg.name: envelope(pg.resources, 1024),
        bootstrap_job(pg): Envelope("0.2", "128m", 64, one_shot=True),
    }
    if pg.backup is not None:
        services[dump_service(pg)] = Envelope("0.5", "512m", 256, one_shot=True)
        services[backup_job(pg)] = Envelope("0.5", "512m", 256, one_shot=True)
    return services


def stacks(topo: Topology) -> dict[str, dict[str, Envelope]]:
    """Per VM name, the services its compose stack runs."""
    edge, kafka = topo.edge.vm, topo.messaging.kafka.vm
    return {
        edge: {**edge_services(topo), **workload_services(topo, edge), **postgres_services(topo, edge)},
        kafka: {**kafka_services(topo), **workload_services(topo, kafka), **postgres_services(topo, kafka)},
    }
