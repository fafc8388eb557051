"""Availability: what the loss or the drain of each node takes down, and the workloads that
must keep serving through a node's loss.

For every node, from the plan alone: the workloads that cannot run without it (no other node
matches their node selector and tolerates their taints, or their volumes are on it), and
what a drain of it does (stops at a disruption budget, or leaves pods Pending). For a server,
what its loss does to the control plane. The generated README lists these as the profile's
single points of failure; `simulate --fail-node` and `--drain` compare what the simulated
cluster does with this list.

A processing service, edge component or workload with `availability: {survives: node-loss}` must keep
serving through the loss of any one node: at least two replicas, at least two nodes it may run
on (its pods are spread over them, plan/common.py `spread_required`), and room on those nodes
for everything confined to them once any one is gone (`requirement_findings`; capacity.py's
analysis reports them with the rest).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .capacity import _RESOURCES, Demand, Finding, Row, _fmt, _group_name, _node_capacity, _unit, demands
from .errors import Path
from .model.edge import EdgeComponent
from .model.processing import ProcessingService
from .model.workloads import Workload
from .plan import Plan
from .plan.common import survives_node_loss
from .plan.postgresql import server_workload
from .plan.storage import drive_host


@dataclass(frozen=True)
class Down:
    """A workload that stops with a node."""

    kind: str
    namespace: str
    name: str
    why: str
    accepted: str = ""  # the profile's reason (availability: {survives: nothing, reason: ...})

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.namespace, self.name)


@dataclass(frozen=True)
class NodeImpact:
    """What losing, and what draining, one node does."""

    node: str
    server: str  # what its loss does to the control plane ("" for an agent)
    loss: tuple[Down, ...]
    drain: tuple[str, ...]
    blocks: tuple[tuple[str, str, str], ...] = ()  # the workloads whose budgets stop a drain of it


def _availability(plan: Plan, source: Path) -> Any:
    """The `availability` of the processing service, edge component or workload a spec comes from."""
    topo = plan.topology
    if source[:2] == ("processing", "services"):
        return topo.processing.services[int(source[2])].availability
    if source[:1] == ("edge",) and len(source) > 1:
        return getattr(getattr(topo.edge, str(source[1]), None), "availability", None)
    if source[:1] == ("workloads",) and len(source) > 1:
        return topo.workloads[int(source[1])].availability
    if source[:2] == ("storage", "postgresql") and topo.storage.postgresql is not None:
        return server_workload(topo)[0].availability  # the store's, as the generator states it
    return None


def _budgets(plan: Plan) -> set[tuple[str, str]]:
    return {(s.values["namespace"], s.name) for s in plan.specs if s.kind == "PodDisruptionBudget"}


def _pinned(plan: Plan, demand: Demand) -> dict[str, tuple[str, int]]:
    """node -> (why the workload's pods cannot leave it, how many of them are there): pods that
    may run on one node only, and MinIO's servers, each pinned to the node of its drives."""
    topo = plan.topology
    minio = topo.storage.minio
    if demand.kind == "StatefulSet" and demand.name == "minio" and minio.volumes.hosts:
        hosts: dict[str, list[int]] = {}
        for server in range(minio.nodes):
            for host in dict.fromkeys(drive_host(minio, server, d) for d in range(minio.drives_per_node)):
                hosts.setdefault(host, []).append(server)
        return {host: (_volumes_on(servers, host), len(servers)) for host, servers in hosts.items()}
    if len(demand.nodes) == 1 and not demand.per_node:
        (node,) = demand.nodes
        return {node: (f"no other node may run it: {_group_name(topo, demand.nodes)}", demand.pods)}
    return {}


def _servers(servers: list[int]) -> str:
    names = [f"minio-{n}" for n in servers]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _volumes_on(servers: list[int], host: str) -> str:
    whose = "its volumes are" if len(servers) == 1 else "their volumes are"
    return f"{_servers(servers)} cannot start elsewhere: {whose} on {host}"


def _server_note(plan: Plan, node: str) -> str:
    masters = [n.name for n in plan.topology.cluster.master_nodes]
    if node not in masters:
        return ""
    if len(masters) == 1:
        return (
            "the cluster's only server: the API server, scheduler and controllers stop with it; running pods "
            "keep running on the other nodes, but nothing is scheduled, replaced or changed until it returns"
        )
    if len(masters) == 2:
        return "one of two servers: embedded etcd loses its quorum, and the control plane stops until it returns"
    return f"one of {len(masters)} servers: embedded etcd keeps its quorum and the control plane keeps running"


def floating(plan: Plan) -> list[Down]:
    """StatefulSets that stop with whichever node they run on: a StatefulSet's pod on a lost node is
    not replaced until it is deleted by hand, and a volume the cluster provisions stays on the
    node it was first provisioned on."""
    result = []
    for demand in demands(plan):
        if demand.kind != "StatefulSet" or _pinned(plan, demand):
            continue
        result.append(
            Down(
                demand.kind,
                demand.namespace,
                demand.name,
                "a StatefulSet's pod on a lost node is not replaced until it is deleted by hand, and its "
                "volume stays on the node it was first provisioned on",
            )
        )
    return result


def survivors(plan: Plan) -> list[str]:
    """The processing services, in-cluster edge components and workloads that must survive a node's loss."""
    topo = plan.topology
    workloads: list[ProcessingService | EdgeComponent | Workload] = [
        *topo.processing.services,
        *(c for c in topo.edge.components if "cluster" in c.runs_on),
        *(w for w in topo.workloads if w.namespace is not None),
    ]
    return [w.name for w in workloads if survives_node_loss(w)]


def impacts(plan: Plan) -> list[NodeImpact]:
    """What losing and what draining each node of the cluster does, node by node."""
    budgets = _budgets(plan)
    # Each workload's pinned nodes, found once (not once per node: the nodes grow with the workloads).
    on_node: dict[str, list[tuple[Demand, str, int]]] = {}
    for demand in demands(plan):
        if not demand.per_node:
            for node_name, (why, pods) in _pinned(plan, demand).items():
                on_node.setdefault(node_name, []).append((demand, why, pods))
    result = []
    for node in plan.topology.cluster.nodes:
        loss, drain, blocks = [], [], []
        for demand, why, pods in on_node.get(node.name, []):
            availability = _availability(plan, demand.source)
            accepted = availability.reason if availability is not None and availability.survives == "nothing" else ""
            loss.append(Down(demand.kind, demand.namespace, demand.name, why, accepted))
            if (demand.namespace, demand.name) in budgets and pods > 1:
                blocks.append((demand.kind, demand.namespace, demand.name))
                drain.append(
                    f"stops after evicting one pod of {demand.kind} {demand.name}: its disruption budget lets one "
                    "be down at a time, and the evicted pod cannot start elsewhere, so the drain waits for ever "
                    f"({why}); take {node.name} down in a maintenance window instead"
                )
            else:
                drain.append(f"leaves {demand.kind} {demand.name} Pending until {node.name} returns ({why})")
        result.append(NodeImpact(node.name, _server_note(plan, node.name), tuple(loss), tuple(drain), tuple(blocks)))
    return result


_Loss = tuple[str, frozenset[str], dict[str, Decimal], dict[str, Decimal]]


def _losses(work: list[Demand], nodes: dict[str, Any], group: frozenset[str]) -> list[_Loss]:
    """(lost, the rest, their capacity, what the workloads confined to them request there) for
    each node of `group` lost in turn (N-1: everything confined to these nodes must fit on them
    once any one is gone)."""
    inside = [d for d in work if d.nodes and (d.nodes <= group or d.per_node and d.nodes & group)]
    result = []
    for lost in sorted(group):
        rest = group - {lost}
        capacity = {r: sum((_node_capacity(nodes[n])[r] for n in rest), Decimal(0)) for r in _RESOURCES}
        # What can move there: a workload that may only run on the lost node stops instead.
        moving = [d for d in inside if d.nodes - {lost}]
        requested = {r: sum((d.total(r, rest) for d in moving), Decimal(0)) for r in _RESOURCES}
        result.append((lost, rest, capacity, requested))
    return result


def requirements(plan: Plan) -> tuple[list[Row], list[Finding]]:
    """The capacity rows of every workload that must survive a node's loss (its nodes, less each
    one in turn: scope n-1), and an error for each that cannot."""
    topo = plan.topology
    work = demands(plan)
    nodes = {n.name: n for n in topo.cluster.nodes}
    rows: dict[tuple[frozenset[str], str], Row] = {}
    losses: dict[frozenset[str], list[_Loss]] = {}  # per set of nodes: workloads share them
    findings = []
    for demand in work:
        availability = _availability(plan, demand.source)
        if availability is None or availability.survives != "node-loss" or demand.kind != "Deployment":
            continue
        where = demand.source + ("availability",)
        label = f"{demand.label} must survive the loss of a node (availability: node-loss)"
        if demand.pods < 2:
            findings.append(Finding("error", where, f"{label}, but it has {demand.pods} replica; it needs two or more"))
        if len(demand.nodes) < 2:
            may = f"only {', '.join(sorted(demand.nodes))} may run it" if demand.nodes else "no node may run it"
            findings.append(Finding("error", where, f"{label}, but {may} ({_group_name(topo, demand.nodes)})"))
            continue
        if demand.nodes not in losses:
            losses[demand.nodes] = _losses(work, nodes, demand.nodes)
        for lost, rest, capacity, requested in losses[demand.nodes]:
            rows.setdefault(
                (demand.nodes, lost),
                Row("n-1", f"{', '.join(sorted(rest))} (without {lost})", capacity, requested, [], where),
            )
            for resource in _RESOURCES:
                if requested[resource] > capacity[resource]:
                    findings.append(
                        Finding(
                            "error",
                            where,
                            f"{label}, but once {lost} is lost the workloads that may only run on "
                            f"{', '.join(sorted(rest))} request {_fmt(resource, requested[resource])} "
                            f"{_unit(resource)} of the {_fmt(resource, capacity[resource])} there",
                        )
                    )
    return [rows[key] for key in sorted(rows, key=lambda k: (sorted(k[0]), k[1]))], findings
