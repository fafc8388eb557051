"""Capacity: what the workloads request against what the nodes and VMs have (seed 8.0.5, 8.1.1).

In the cluster, each workload's pods can only run on the nodes it is placed on: the nodes
whose labels match its node selector and whose NoSchedule/NoExecute taints it tolerates
(MinIO: the nodes its local volumes are pinned to). For every such node group, and for the
cluster as a whole, the requests of the workloads that can only run inside the group must fit
the group's capacity (CPU, memory, GPUs): a DaemonSet counts once per node it runs on, an
autoscaled Deployment at its minimum, and one pod must fit on one node. Local
PersistentVolumes, and the local-path claims of a workload placed on one node, are summed per
node against the node's storage. Outside the cluster, each
compose stack's limits (times replicas; plan/vms.py, which the compose target writes) are
summed against its VM.

Over capacity is an error; above WARN_PERCENT a warning (not for GPUs: a whole GPU per pod
is how they are used, so 100% is the plan). Capacities are the nodes' totals as
the topology gives them; K3s and the OS take a share of each, which the margin is for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from .errors import Path
from .model import Topology
from .model.quantity import parse
from .plan import Plan
from .plan.vms import stacks as vm_stacks
from .shared import WARN_PERCENT

GPU = "nvidia.com/gpu"
_RESOURCES = ("cpu", "memory", "gpu")


@dataclass
class Demand:
    """One workload's pods: what each requests, how many, and where they may run."""

    kind: str
    name: str
    source: Path
    per_pod: dict[str, Decimal]
    pods: int
    nodes: frozenset[str]
    per_node: bool = False  # a DaemonSet: one pod on each of `nodes`
    namespace: str = ""

    @property
    def label(self) -> str:
        return f"{self.kind} {self.name}"

    def total(self, resource: str, within: frozenset[str]) -> Decimal:
        count = len(self.nodes & within) if self.per_node else self.pods
        return self.per_pod[resource] * count


@dataclass
class Row:
    """One line of the capacity table."""

    scope: str  # node | group | cluster | vm
    name: str
    capacity: dict[str, Decimal]
    requested: dict[str, Decimal]
    workloads: list[str] = field(default_factory=list)
    source: Path = ()
    by_workload: dict[str, dict[str, Decimal]] = field(default_factory=dict)

    def percent(self, resource: str) -> Decimal | None:
        cap = self.capacity.get(resource, Decimal(0))
        if not cap:
            return None if not self.requested.get(resource) else Decimal("Infinity")
        return self.requested.get(resource, Decimal(0)) * 100 / cap


@dataclass
class Finding:
    level: str  # error | warning
    path: Path
    message: str


@dataclass
class Report:
    rows: list[Row]
    findings: list[Finding]
    costs: list[tuple[str, int, int]]  # (VM, monthly min, monthly max) in USD

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "warning"]


# ---- cluster ------------------------------------------------------------------------------


def _tolerated(taint: Any, tolerations: list[dict[str, Any]]) -> bool:
    for t in tolerations:
        if t.get("effect") not in (None, "", taint.effect):
            continue
        if t.get("operator") == "Exists" and t.get("key") in (None, "", taint.key):
            return True
        if t.get("key") == taint.key and t.get("value", "") == taint.value:
            return True
    return False


def _eligible(topo: Topology, pod: dict[str, Any], cache: dict[str, frozenset[str]]) -> frozenset[str]:
    """The nodes a pod may run on; cached by placement, which thousands of services share."""
    selector = pod.get("nodeSelector") or {}
    tolerations = pod.get("tolerations") or []
    key = json.dumps([selector, tolerations], sort_keys=True)
    if key not in cache:
        cache[key] = _matching_nodes(topo, selector, tolerations)
    return cache[key]


def _matching_nodes(topo: Topology, selector: dict[str, str], tolerations: list[dict[str, Any]]) -> frozenset[str]:
    return frozenset(
        n.name
        for n in topo.cluster.nodes
        if all(n.labels.get(k) == v for k, v in selector.items())
        and all(t.effect == "PreferNoSchedule" or _tolerated(t, tolerations) for t in n.taints)
    )


def _pod_requests(pod: dict[str, Any]) -> dict[str, Decimal]:
    """Effective requests of a pod: the containers' sum, or the largest init container if more."""

    def of(container: dict[str, Any]) -> dict[str, Decimal]:
        res = container.get("resources") or {}
        requests, limits = res.get("requests") or {}, res.get("limits") or {}
        return {
            "cpu": parse(requests.get("cpu", limits.get("cpu", 0))),
            "memory": parse(requests.get("memory", limits.get("memory", 0))),
            "gpu": parse(limits.get(GPU, requests.get(GPU, 0))),
        }

    containers = [of(c) for c in pod.get("containers", [])]
    total = {r: sum((c[r] for c in containers), Decimal(0)) for r in _RESOURCES}
    for init in map(of, pod.get("initContainers", [])):
        total = {r: max(total[r], init[r]) for r in _RESOURCES}
    return total


def demands(plan: Plan) -> list[Demand]:
    """The pods every workload of the plan asks for, and the nodes each may run on."""
    topo = plan.topology
    autoscaled = {s.values["name"]: s.values["min_replicas"] for s in plan.specs if s.kind == "HorizontalPodAutoscaler"}
    minio_hosts = frozenset(topo.storage.minio.volumes.hosts)
    result: list[Demand] = []
    placements: dict[str, frozenset[str]] = {}
    for spec in plan.specs:
        if spec.kind not in ("Deployment", "StatefulSet", "DaemonSet"):
            continue
        pod = spec.values["pod"]
        nodes = _eligible(topo, pod, placements)
        if spec.kind == "StatefulSet" and spec.name == "minio" and minio_hosts:
            nodes &= minio_hosts  # its local volumes pin each pod to their node
        replicas = spec.values.get("replicas")
        pods = autoscaled.get(spec.name, 1) if replicas is None else replicas
        result.append(
            Demand(
                spec.kind,
                spec.name,
                spec.source,
                _pod_requests(pod),
                pods,
                nodes,
                per_node=spec.kind == "DaemonSet",
                namespace=spec.values.get("namespace", ""),
            )
        )
    return result


def _node_capacity(node: Any) -> dict[str, Decimal]:
    r = node.resources
    return {"cpu": Decimal(r.cpu), "memory": parse(r.memory), "gpu": Decimal(r.gpu), "storage": parse(r.storage)}


def _node_index(topo: Topology) -> dict[str, tuple[Any, Path]]:
    index: dict[str, tuple[Any, Path]] = {}
    for group in ("master_nodes", "worker_nodes"):
        for i, node in enumerate(getattr(topo.cluster, group)):
            index[node.name] = (node, ("cluster", group, i))
    return index


def _group_name(topo: Topology, nodes: frozenset[str]) -> str:
    """'node-type=cpu-intensive (k3s-worker-01)', or the nodes themselves."""
    types = {n.node_type for n in topo.cluster.nodes if n.name in nodes}
    same = [n.name for n in topo.cluster.nodes if n.node_type in types]
    listed = ", ".join(sorted(nodes))
    if len(types) == 1 and None not in types and sorted(same) == sorted(nodes):
        return f"node-type={types.pop()} ({listed})"
    if nodes == frozenset(n.name for n in topo.cluster.nodes):
        return f"all nodes ({listed})"
    if nodes == frozenset(n.name for n in topo.cluster.nodes if not n.taints):
        return f"untainted nodes ({listed})"
    return listed


# The class K3s's own local-path provisioner serves, and the cluster's default: a claim of it
# takes a directory on the disk of the node its pod is scheduled to.
LOCAL_PATH = "local-path"


def _local_claims(plan: Plan, work: list[Demand]) -> list[tuple[str, str, Decimal]]:
    """(node, claim, size) of every local-path claim whose pods can only run on one node: a
    stateful workload's claim per replica, a stateless workload's claim once."""
    nodes = {(d.namespace, d.name): d.nodes for d in work}
    claims = {
        (s.values["namespace"], s.name): s.values["claim"] for s in plan.specs if s.kind == "PersistentVolumeClaim"
    }
    result = []
    for spec in plan.specs:
        namespace = spec.values.get("namespace", "")
        placed = sorted(nodes.get((namespace, spec.name), ()))
        if len(placed) != 1:
            continue
        node = placed[0]
        if spec.kind == "StatefulSet":
            for template in spec.values.get("claims") or []:
                if template["spec"].get("storageClassName", LOCAL_PATH) == LOCAL_PATH:
                    size = parse(template["spec"]["resources"]["requests"]["storage"])
                    name = template["metadata"]["name"]
                    result += [(node, f"{name}-{spec.name}-{i}", size) for i in range(spec.values["replicas"] or 1)]
        elif spec.kind == "Deployment":
            for volume in spec.values["pod"].get("volumes", []):
                ref = volume.get("persistentVolumeClaim")
                claim = claims.get((namespace, ref["claimName"])) if ref else None
                if claim is not None and claim.get("storageClassName", LOCAL_PATH) == LOCAL_PATH:
                    result.append((node, ref["claimName"], parse(claim["resources"]["requests"]["storage"])))
    return result


def _cluster(plan: Plan, rows: list[Row], findings: list[Finding]) -> None:
    topo = plan.topology
    index = _node_index(topo)
    everything = frozenset(index)
    work = demands(plan)
    caps = {name: _node_capacity(node) for name, (node, _) in index.items()}
    largest: dict[tuple[frozenset[str], str], Decimal] = {}
    for demand in work:
        if not demand.nodes and demand.pods:
            findings.append(
                Finding(
                    "error",
                    demand.source,
                    f"{demand.label} fits no node: no node matches its node selector and tolerates its taints",
                )
            )
            continue
        for resource in _RESOURCES:
            need = demand.per_pod[resource]
            if (demand.nodes, resource) not in largest:
                largest[(demand.nodes, resource)] = max((caps[n][resource] for n in demand.nodes), default=Decimal(0))
            biggest = largest[(demand.nodes, resource)]
            if need > biggest and demand.nodes:
                findings.append(
                    Finding(
                        "error",
                        demand.source,
                        (
                            f"one pod of {demand.label} requests {_fmt(resource, need)} {_unit(resource)}, "
                            f"more than any node it may run on has ({_group_name(topo, demand.nodes)}: "
                            f"at most {_fmt(resource, biggest)})"
                        ),
                    )
                )

    # Node groups: every distinct set of nodes some workload is confined to, and the cluster.
    groups = sorted(
        {d.nodes for d in work if d.nodes and not d.per_node} | {everything},
        key=lambda g: (len(g) == len(everything), sorted(g)),
    )
    for nodes in groups:
        inside = [d for d in work if d.nodes and d.nodes <= nodes or d.per_node and d.nodes & nodes]
        capacity = {r: sum((caps[n][r] for n in nodes), Decimal(0)) for r in _RESOURCES}
        requested = {r: sum((d.total(r, nodes) for d in inside), Decimal(0)) for r in _RESOURCES}
        scope = "cluster" if nodes == everything else "group"
        name = (
            f"cluster ({len(nodes)} node{'s' if len(nodes) != 1 else ''})"
            if scope == "cluster"
            else _group_name(topo, nodes)
        )
        first = index[sorted(nodes)[0]][1] + ("resources",)
        row = Row(
            scope,
            name,
            capacity,
            requested,
            [d.label for d in inside],
            ("cluster",) if scope == "cluster" else first,
            {d.label: {r: d.total(r, nodes) for r in _RESOURCES} for d in inside},
        )
        rows.append(row)
        _judge(row, findings, "requested by")

    # Local storage: PersistentVolumes pinned to a node, against the node's storage.
    volumes: dict[str, list[tuple[str, Decimal]]] = {}
    for spec in plan.specs:
        if spec.kind == "PersistentVolume" and spec.values.get("host"):
            volumes.setdefault(spec.values["host"], []).append((spec.name, parse(spec.values["size"])))
    pv_names = {name for placed in volumes.values() for name, _ in placed}
    for node, claim, size in _local_claims(plan, work):
        volumes.setdefault(node, []).append((claim, size))
    pinned: dict[str, list[Demand]] = {}
    for d in work:
        for name in d.nodes if d.per_node else (d.nodes if len(d.nodes) == 1 else ()):
            pinned.setdefault(name, []).append(d)
    for name, (_node, path) in index.items():
        capacity = caps[name]
        placed = volumes.get(name, [])
        on_node = pinned.get(name, [])
        row = Row(
            "node",
            name,
            capacity,
            {
                **{
                    r: sum((d.per_pod[r] * (1 if d.per_node else d.pods) for d in on_node), Decimal(0))
                    for r in _RESOURCES
                },
                "storage": sum((size for _, size in placed), Decimal(0)),
            },
            [f"PersistentVolume {v}" if v in pv_names else f"claim {v}" for v, _ in placed],
            path + ("resources",),
        )
        rows.append(row)
        _judge(row, findings, "claimed by", resources=("storage",))


# ---- VMs ------------------------------------------------------------------------------------


def _vms(topo: Topology, rows: list[Row], findings: list[Finding]) -> None:
    """Each compose stack's limits against its VM; the cluster's nodes against the compute VM."""
    stacks = vm_stacks(topo)
    for i, vm in enumerate(topo.vms):
        capacity = {"cpu": Decimal(vm.cpu), "memory": Decimal(vm.memory_gb) * 2**30, "gpu": Decimal(vm.gpu)}
        stack = stacks.get(vm.name)
        if stack is not None:
            requested = {"cpu": Decimal(0), "memory": Decimal(0), "gpu": Decimal(0)}
            names = []
            for name, env in stack.items():
                if env.one_shot:
                    continue  # a job (topic creation) that exits once done
                requested["cpu"] += env.cpu_cores * env.replicas
                requested["memory"] += env.memory_bytes * env.replicas
                names.append(f"{name}" + (f" x{env.replicas}" if env.replicas > 1 else ""))
            row = Row("vm", f"{vm.name} (compose limits)", capacity, requested, names, ("vms", i))
            rows.append(row)
            _judge(row, findings, "limits of")
        if vm.role == "compute":
            nodes = topo.cluster.nodes
            declared = {
                "cpu": sum((Decimal(n.resources.cpu) for n in nodes), Decimal(0)),
                "memory": sum((parse(n.resources.memory) for n in nodes), Decimal(0)),
                "gpu": sum((Decimal(n.resources.gpu) for n in nodes), Decimal(0)),
            }
            over = [r for r in _RESOURCES if declared[r] > capacity[r]]
            if over:
                findings.append(
                    Finding(
                        "warning",
                        ("vms", i),
                        (
                            "the cluster's nodes declare "
                            f"{', '.join(f'{_fmt(r, declared[r])} {_unit(r)}' for r in over)}, more than {vm.name} "
                            f"has ({', '.join(f'{_fmt(r, capacity[r])} {_unit(r)}' for r in over)}): "
                            f"the nodes "
                            f"cannot all be virtual machines on {vm.name}"
                        ),
                    )
                )


# ---- report ---------------------------------------------------------------------------------


def _unit(resource: str) -> str:
    return {"cpu": "CPU", "memory": "memory", "gpu": "GPU", "storage": "storage"}[resource]


def _fmt(resource: str, value: Decimal) -> str:
    if resource in ("memory", "storage"):
        for unit, size in (("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20)):
            if value >= size:
                return f"{(value / size).quantize(Decimal('0.01')).normalize():f}{unit}"
        return f"{value:f}"
    return f"{value.quantize(Decimal('0.001')).normalize():f}"


def _judge(row: Row, findings: list[Finding], verb: str, resources: tuple[str, ...] = _RESOURCES) -> None:
    for resource in resources:
        percent = row.percent(resource)
        if percent is None:
            continue
        need, cap = row.requested.get(resource, Decimal(0)), row.capacity.get(resource, Decimal(0))
        users = [w for w in row.workloads if row.by_workload.get(w, {}).get(resource, 1)]
        text = (
            f"{row.name}: {_fmt(resource, need)} {_unit(resource)} {verb} "
            f"{', '.join(users) or 'nothing'}, of {_fmt(resource, cap)}"
        )
        if need > cap:
            findings.append(Finding("error", row.source, f"over capacity: {text}"))
        elif percent > WARN_PERCENT and resource != "gpu":  # GPUs are whole: one per pod is the plan
            findings.append(
                Finding("warning", row.source, f"{percent:.0f}% of capacity (over {WARN_PERCENT}%): {text}")
            )


def analyse(plan: Plan) -> Report:
    """The capacity table of a plan and what is over (error) or near (warning) capacity."""
    rows: list[Row] = []
    findings: list[Finding] = []
    _cluster(plan, rows, findings)
    _vms(plan.topology, rows, findings)
    from .availability import requirements  # it builds on this module's demands

    n_1, unmet = requirements(plan)
    rows += n_1
    findings += unmet
    costs = [(vm.name, vm.monthly_cost_usd.min, vm.monthly_cost_usd.max) for vm in plan.topology.vms]
    unique = {(f.level, f.path, f.message): f for f in findings}
    return Report(rows, list(unique.values()), costs)


def table(report: Report) -> str:
    """The capacity table as text: scope, name, and per resource requested / capacity (percent)."""
    header = f"{'scope':<8} {'name':<58} {'CPU':>20} {'memory':>24} {'GPU':>11} {'storage':>24}"
    lines = [header, "-" * len(header)]
    for row in report.rows:
        cells = []
        for resource, width in (("cpu", 20), ("memory", 24), ("gpu", 11), ("storage", 24)):
            if resource not in row.capacity or (resource == "storage" and row.scope != "node"):
                cells.append(f"{'-':>{width}}")
                continue
            percent = row.percent(resource)
            shown = "" if percent is None else (" (inf)" if percent.is_infinite() else f" ({percent:.0f}%)")
            cells.append(
                f"{_fmt(resource, row.requested.get(resource, Decimal(0)))}/"
                f"{_fmt(resource, row.capacity[resource])}{shown}".rjust(width)
            )
        lines.append(f"{row.scope:<8} {row.name[:58]:<58} " + " ".join(cells))
    lines += ["", "Monthly cost estimate per VM (seed 8.0.5, USD):"]
    for name, low, high in report.costs:
        lines.append(f"  {name:<10} {low:>6} - {high:<6}")
    total_low, total_high = sum(c[1] for c in report.costs), sum(c[2] for c in report.costs)
    lines.append(f"  {'total':<10} {total_low:>6} - {total_high:<6}")
    return "\n".join(line.rstrip() for line in lines) + "\n"
