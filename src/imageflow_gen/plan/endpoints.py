"""Where one workload reaches another's port, wherever each runs: the one rule that env
endpoints, the stores' variables, Prometheus's scrapes and the diagram all read.

In the cluster a Service's DNS name; on the same VM the compose service's name; from a VM into
the cluster a node port (on the one node that answers when the port admits only some VMs);
from anywhere to a VM the VM's address and the port it publishes beyond 127.0.0.1.
"""

from __future__ import annotations

from typing import Any

from ..model import Topology
from ..model.checks import Target, endpoint_targets, only_node
from ..model.workloads import Endpoint, WorkloadPort
from .common import service_dns


def first_node_ip(topo: Topology) -> str:
    """Where a VM reaches a cluster node port: the first server node (any node forwards it)."""
    return str(topo.cluster.master_nodes[0].ip)


def endpoint_target(topo: Topology, endpoint: Endpoint) -> tuple[Target, WorkloadPort] | None:
    """What an endpoint names (a workload or a seed service) and its port; None when either is
    missing (the checks say so)."""
    target = endpoint_targets(topo).get(endpoint.workload)
    port = target.port(endpoint.port) if target else None
    return (target, port) if target is not None and port is not None else None


def published_address(topo: Topology, vm: str, port: WorkloadPort) -> tuple[str, int] | None:
    """(the VM's address, the published port) of a port a VM publishes beyond itself; None for
    one it keeps on 127.0.0.1 or does not publish."""
    if port.publish is None or not port.published_beyond_vm:
        return None
    return str(next(v.address for v in topo.vms if v.name == vm)), port.publish.port


def endpoint_address(topo: Topology, caller: Any, endpoint: Endpoint) -> tuple[str, int] | None:
    """(host, port) at which `caller` (anything with `namespace` and `vm`) reaches `endpoint`,
    where the caller runs; None when it cannot (the checks say why)."""
    found = endpoint_target(topo, endpoint)
    if found is None:
        return None
    target, port = found
    if caller.namespace is not None and target.namespace is not None:
        return service_dns(target.name, target.namespace), port.port
    if caller.vm is not None and target.vm == caller.vm:
        return target.name, port.port
    if caller.vm is not None and target.namespace is not None:
        if port.node_port is None:
            return None
        node = only_node(topo, target) if port.node_port_from else None
        return (str(node.ip) if node else first_node_ip(topo)), port.node_port
    if target.vm is not None:
        return published_address(topo, target.vm, port)
    return None


def postgres_address(topo: Topology, caller: Any) -> tuple[str, int]:
    """(PGHOST, PGPORT) of the PostgreSQL store for `caller`: its `sql` port as an endpoint."""
    pg = topo.storage.postgresql
    assert pg is not None
    address = endpoint_address(topo, caller, Endpoint(workload=pg.name, port="sql"))
    assert address is not None, "checked by model/checks.py"
    return address
