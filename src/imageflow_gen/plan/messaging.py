"""Kafka lives on VM1, outside the cluster: a selector-less Service and an EndpointSlice give
cluster workloads a stable in-cluster name for the brokers' cluster-network listener."""

from __future__ import annotations

from ..model import Topology
from ..model.messaging import KafkaListener
from .common import Spec, labels, service_dns, spec

K3S_NETWORK = "private"
VPN_NETWORK = "vpn"


def listener_on(topo: Topology, network: str) -> KafkaListener | None:
    """The first listener on one of the Kafka VM's networks (vpn or private)."""
    return next((lst for lst in topo.messaging.kafka.listeners if lst.network == network), None)


def cluster_listener(topo: Topology) -> str | None:
    """The listener cluster workloads use: the first on the VM's private network."""
    listener = listener_on(topo, K3S_NETWORK)
    return listener.name if listener else None


def vpn_bootstrap_servers(topo: Topology) -> str:
    """The brokers as the edge VM reaches them: the Kafka VM's VPN address and each broker's
    port of the VPN listener; empty without either."""
    kafka = topo.messaging.kafka
    vm = next(v for v in topo.vms if v.name == kafka.vm)
    listener = listener_on(topo, VPN_NETWORK)
    if listener is None or vm.vpn_address is None:
        return ""
    return ",".join(f"{vm.vpn_address}:{b.ports[listener.name]}" for b in kafka.brokers)


def broker_ports(topo: Topology) -> list[tuple[str, int]]:
    """(broker name, port of the cluster listener) for every broker."""
    listener = cluster_listener(topo)
    if listener is None:
        return []
    return [(b.name, b.ports[listener]) for b in topo.messaging.kafka.brokers]


def kafka_vm_address(topo: Topology) -> str:
    return next(vm.address for vm in topo.vms if vm.name == topo.messaging.kafka.vm)


def bootstrap_servers(topo: Topology) -> str:
    kafka = topo.messaging.kafka
    host = service_dns(kafka.cluster_service, kafka.cluster_namespace)
    return ",".join(f"{host}:{port}" for _, port in broker_ports(topo))


def specs(topo: Topology) -> list[Spec]:
    kafka = topo.messaging.kafka
    ports = broker_ports(topo)
    if not ports:
        return []
    source = ("messaging", "kafka")
    service_labels = labels(kafka.cluster_service, "messaging")
    return [
        spec("Service", "service", source, name=kafka.cluster_service, namespace=kafka.cluster_namespace,
             labels=service_labels, selector=None, headless=False,
             ports=[{"name": name, "port": port, "targetPort": port, "protocol": "TCP"} for name, port in ports]),
        spec("EndpointSlice", "endpointslice", source, name=f"{kafka.cluster_service}-vm",
             namespace=kafka.cluster_namespace,
             labels={**service_labels, "kubernetes.io/service-name": kafka.cluster_service,
                     "endpointslice.kubernetes.io/managed-by": "imageflow-gen"},
             addresses=[kafka_vm_address(topo)],
             ports=[{"name": name, "port": port, "protocol": "TCP"} for name, port in ports]),
    ]
